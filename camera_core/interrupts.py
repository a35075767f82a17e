"""Abort and stop: ending an exposure early (a base of ``ExposureControl``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .events import ExposurePhase
from .exceptions import CameraError

__all__ = ["ExposureInterrupts"]


class ExposureInterrupts:
    """``abort`` (discard the frame) and ``stop`` (read it out now).

    The device subclass fills in ``_abort_internal`` and ``_stop_internal``;
    the policy (checks, waiting for the exposure to end, events) is here and in
    `~camera_core.exposing.ExposureControl`.
    """

    #: Whether the camera can cut an integration short. `None` infers it from
    #: whether ``_stop_internal`` is overridden.
    can_stop: bool | None = None

    async def _abort_internal(self) -> None:
        """Hook: tells the device to discard the exposure in progress."""

    async def _stop_internal(self) -> None:
        """Hook: tells the device to end the integration and read out now."""

    def _supports_stop(self: Any) -> bool:
        if self.can_stop is not None:
            return bool(self.can_stop)
        return type(self)._stop_internal is not ExposureInterrupts._stop_internal

    async def abort(self: Any, timeout: float = 10.0) -> bool:
        """Aborts the exposure in progress and discards its data.

        Calls ``_abort_internal``, cancels the exposure and waits (up to
        ``timeout`` seconds) until it has ended with ``EXPOSURE_ABORTED``.

        Raises
        ------
        CameraError
            If no exposure is in progress or it is already being written.
        """
        if not self.exposing:
            raise CameraError(f"Camera {self.name} has no exposure to abort.")
        if self.progress.phase in (
            ExposurePhase.WRITING,
            ExposurePhase.POST_PROCESSING,
        ):
            raise CameraError(
                f"The exposure on {self.name} is already read out and being "
                "processed; it can no longer be aborted."
            )
        self._abort_requested = True
        task = self._expose_task
        if task is not None:
            task.cancel()
        try:
            await asyncio.wait_for(self._abort_internal(), timeout)
        except Exception as err:
            self.log(f"Device abort failed: {err}; the frame is discarded anyway.", 30)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self.progress.phase is ExposurePhase.ABORTED

    async def stop(self: Any) -> None:
        """Ends the integration now and reads the frame out.

        Raises
        ------
        CameraError
            If the camera is not integrating or cannot stop.
        """
        if not self.exposing or self.progress.phase is not ExposurePhase.INTEGRATING:
            raise CameraError(
                f"Camera {self.name} is not integrating; nothing to stop."
            )
        if not self._supports_stop():
            raise CameraError(
                f"Camera {self.name} cannot end an integration early; use abort."
            )
        self._stop_event.set()
        await asyncio.wait_for(self._stop_internal(), self.cancel_grace)
