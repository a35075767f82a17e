"""The exposure policy of `~camera_core.camera.BaseCamera`.

`ExposureControl` holds everything between "expose" and a written frame:
validation, the per-frame timeout, stacking off the event loop, post-processing,
writing and the events that report each phase. Abort and stop are in
`camera_core.interrupts`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.time import Time

from .events import CameraEvent, ExposurePhase
from .exceptions import (
    CameraBusyError,
    CameraError,
    ExposureAborted,
    ExposureError,
    ExposureTimeout,
)
from .exposure import Exposure
from .interrupts import ExposureInterrupts
from .progress import EVENT_PHASES
from .stacking import stack_frames
from .utils import run_in_executor

if TYPE_CHECKING:
    from .models.fits import FITSModel

__all__ = ["IMAGE_TYPES", "ExposureControl", "stack_frames"]

#: The image types a camera accepts.
IMAGE_TYPES = ("bias", "dark", "flat", "object")


async def _cancel_and_wait(task: asyncio.Future, grace: float) -> None:
    """Cancels a driver task and gives it ``grace`` seconds to clean up."""
    if task.done():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=grace)


class ExposureControl(ExposureInterrupts):
    """Exposure policy shared by every camera (a base of ``BaseCamera``)."""

    #: Seconds a driver gets to clean up after a cancel, abort or stop request.
    cancel_grace: float = 5.0

    def _init_exposure_control(self: Any) -> None:
        self._expose_task: asyncio.Task | None = None
        self._exposure: Exposure | None = None
        self._abort_requested = False
        self._stop_event = asyncio.Event()
        self._unsaved: list[Exposure] = []
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def exposing(self: Any) -> bool:
        """Whether an exposure is in progress."""
        return self._exposure is not None

    def _notify(self: Any, event: CameraEvent, payload: dict[str, Any] | None = None):
        """Updates the progress and notifies an event with the camera payload."""
        phase = EVENT_PHASES.get(event)
        # Writing an exposure after expose() returned (in the background, maybe
        # while the next one integrates) does not move the progress.
        current = self._exposure
        about = None if payload is None else payload.get("exposure_id")
        if (
            phase is not None
            and current is not None
            and (about is None or about == current.exposure_id)
        ):
            self.progress.set_phase(phase)
        full = self._get_basic_payload()
        if event.name.startswith("EXPOSURE_"):  # only exposure events carry it
            full.update(self.progress.to_dict())
        if payload:
            full.update(payload)
        self.camera_system.notifier.notify(event, full)

    async def _integrate(self: Any, exposure: Exposure) -> float:
        """Waits for the integration, returning early if `stop` is called.

        Drivers whose device integrates on its own clock call this between
        starting and reading the exposure. Emits ``EXPOSURE_INTEGRATING``.

        Returns
        -------
        exptime
            The seconds actually integrated (camera time). ``exposure.exptime``
            is updated when the integration was stopped early.
        """
        self._notify(CameraEvent.EXPOSURE_INTEGRATING)
        start = self.loop.time()
        try:
            await asyncio.wait_for(
                self._stop_event.wait(), exposure.exptime * self.time_factor
            )
        except TimeoutError:
            return float(exposure.exptime)
        actual = min((self.loop.time() - start) / self.time_factor, exposure.exptime)
        exposure.exptime = actual
        self._notify(CameraEvent.EXPOSURE_STOPPED, {"exptime": actual})
        return actual

    def _validate_exposure(
        self: Any, exptime: float, image_type: str, stack: int
    ) -> float:
        if not self.connected:
            raise CameraError(
                f"Camera {self.name} is not connected; reconnect it first."
            )
        if self.exposing:
            raise CameraBusyError(f"camera {self.name} is busy")
        if image_type not in IMAGE_TYPES:
            raise ExposureError(
                f"Invalid image type {image_type!r}; use one of {IMAGE_TYPES}."
            )
        if isinstance(stack, bool) or not isinstance(stack, int) or stack < 1:
            raise ExposureError(f"Stack must be an integer ≥ 1, not {stack!r}.")
        if image_type == "bias":
            return 0.0
        if (
            isinstance(exptime, bool)
            or not isinstance(exptime, (int, float))
            or not math.isfinite(exptime)
            or exptime < 0
        ):
            raise ExposureError(f"Exposure time must be ≥ 0 seconds, not {exptime!r}.")
        low, high = self.limits.exptime_min, self.limits.exptime_max
        if (low is not None and exptime < low) or (high is not None and exptime > high):
            raise ExposureError(
                f"Exposure time {exptime} s is outside [{low}, {high}] s."
            )
        return float(exptime)

    async def expose(
        self: Any,
        exptime: float,
        image_type: str = "object",
        stack: int = 1,
        stack_function: Callable[..., np.ndarray] = np.median,
        fits_model: FITSModel | None = None,
        filename: str | None = None,
        num: int | None = None,
        write: bool = False,
        postprocess: bool = True,
        timeout_margin: float | None = None,
        exposure_id: str | None = None,
        **kwargs: Any,
    ) -> Exposure:
        """Exposes the camera.

        Parameters
        ----------
        exptime
            The exposure time for each frame, in seconds. 0 is valid; bias frames
            always use 0.
        image_type
            ``'bias'``, ``'dark'``, ``'flat'`` or ``'object'``.
        stack
            Number of frames to take and combine.
        stack_function
            Called as ``stack_function(cube, axis=0)`` on a float32 cube, in an
            executor. Defaults to the median.
        fits_model
            A model that overrides the camera's for this exposure.
        filename
            Where to write the image. If not given, the camera's image namer
            assigns one.
        num
            A sequence number for the image namer (0 is valid).
        write
            Whether to write the image before returning.
        postprocess
            Whether to run ``_post_process_internal``, if the camera has one.
        timeout_margin
            Wall-clock seconds each frame may take beyond its (scaled) ``exptime``
            before it fails. Defaults to the camera's ``exposure_timeout_margin``.
        exposure_id
            An id for the exposure; one is generated if not given.
        kwargs
            Passed to ``_expose_internal`` and ``_post_process_internal``.

        Returns
        -------
        exposure
            The exposure with its data, exposure time and header model.

        Raises
        ------
        CameraBusyError
            If the camera is already exposing.
        ExposureAborted
            If `abort` was called.
        ExposureTimeout
            If a frame did not finish within ``exptime`` plus the margin.
        ExposureError
            For any other failure, with a message saying what happened.

        Notes
        -----
        `stop` ends the current frame early and the stack with it: ``stack``
        becomes the number of frames taken, ``exptime_n`` the seconds actually
        integrated and ``exptime`` their mean.
        """
        exptime = self._validate_exposure(exptime, image_type, stack)
        exposure = Exposure(self, fits_model=fits_model)
        if exposure_id is not None:
            exposure.exposure_id = str(exposure_id)
        exposure.image_type = image_type
        exposure.exptime = exptime
        exposure.stack = stack
        exposure.stack_function = stack_function if stack > 1 else None
        exposure.shutter_open = image_type in ("flat", "object")
        exposure.filename = str(
            filename if filename is not None else self.image_namer(self, num=num)
        )
        margin = (
            self.exposure_timeout_margin
            if timeout_margin is None
            else float(timeout_margin)
        )

        self._exposure = exposure
        self._idle.clear()
        self._abort_requested = False
        self._stop_event.clear()
        self.progress.begin(exposure.exposure_id, image_type, exptime, stack)
        try:
            frames: list[np.ndarray] = []
            integrated: list[float] = []
            for index in range(stack):
                self.progress.stack_n = index + 1
                await self._expose_frame(exposure, exptime, margin, index, kwargs)
                frames.append(exposure.data)
                integrated.append(float(exposure.exptime))
                if self._stop_event.is_set():
                    break  # stop() ends the stack with the current frame
            if len(frames) > 1:
                self.progress.set_phase(ExposurePhase.STACKING)
                exposure.data = await run_in_executor(
                    stack_frames, frames, stack_function
                )
            self._check_abort()
            del frames
            exposure.stack = len(integrated)
            exposure.exptime_n = float(sum(integrated))
            exposure.exptime = exposure.exptime_n / len(integrated)
            self._notify(CameraEvent.EXPOSURE_READ)
            if postprocess and self._has_post_process():
                self._notify(CameraEvent.EXPOSURE_POST_PROCESSING)
                try:
                    await self._post_process_internal(exposure, **kwargs)
                except Exception as err:
                    self._notify(
                        CameraEvent.EXPOSURE_POST_PROCESS_FAILED, {"error": str(err)}
                    )
                    raise
                self._notify(CameraEvent.EXPOSURE_POST_PROCESS_DONE)
            self._check_abort()
            if write:
                await exposure.write()
        except asyncio.CancelledError:
            if not self._abort_requested:
                await self._cleanup_after_failure("exposure cancelled")
                self.progress.error = "cancelled"
                self._notify(CameraEvent.EXPOSURE_FAILED, {"error": "cancelled"})
                self._end_exposure()
                raise
            self.progress.error = "aborted"
            self._notify(CameraEvent.EXPOSURE_ABORTED, {"error": "aborted"})
            self._end_exposure()
            raise ExposureAborted(f"Exposure on {self.name} was aborted.") from None
        except Exception as err:
            error = (
                err
                if isinstance(err, ExposureError)
                else ExposureError(f"Exposure on {self.name} failed: {err}")
            )
            self.progress.error = str(error)
            self._notify(CameraEvent.EXPOSURE_FAILED, {"error": str(error)})
            self._end_exposure()
            raise error from err
        finally:
            self._expose_task = None
        self._notify(CameraEvent.EXPOSURE_DONE, self._done_payload(exposure))
        self._end_exposure()
        return exposure

    def _check_abort(self: Any) -> None:
        if self._abort_requested:
            raise asyncio.CancelledError()

    def _end_exposure(self: Any) -> None:
        self._exposure = None
        self._idle.set()

    def _done_payload(self, exposure: Exposure) -> dict[str, Any]:
        result = exposure.write_result
        if result is None:
            return {"filename": None}
        return {
            "filename": str(result.target),
            "path": str(result.path),
            "spooled": result.spooled,
            "datasum": result.datasum,
        }

    async def _expose_frame(
        self: Any,
        exposure: Exposure,
        exptime: float,
        margin: float,
        index: int,
        kwargs: dict[str, Any],
    ) -> None:
        if self._abort_requested:
            raise asyncio.CancelledError()
        exposure.exptime = exptime
        exposure.data = None
        if index == 0:
            exposure.obstime = Time.now()
        self._notify(CameraEvent.EXPOSURE_FLUSHING)
        task = asyncio.ensure_future(self._expose_internal(exposure, **kwargs))
        self._expose_task = task
        # The margin is wall-clock time: a small time_factor must not shrink the
        # time a real computer needs to read and build the frame.
        limit = exptime * self.time_factor + margin
        try:
            await asyncio.wait_for(asyncio.shield(task), limit)
        except TimeoutError:
            await self._cleanup_after_failure("timeout", task)
            raise ExposureTimeout(
                f"Frame {index + 1} on {self.name} did not finish within "
                f"{limit:g} s (exptime {exptime:g} s + readout margin {margin:g} s). "
                "Check the camera and its connection, or raise "
                "exposure_timeout_margin."
            ) from None
        except asyncio.CancelledError:
            await _cancel_and_wait(task, self.cancel_grace)
            raise
        data = exposure.data
        if data is None or getattr(data, "ndim", 0) != 2:
            raise ExposureError(
                f"The driver of {self.name} returned no 2-D image "
                "(_expose_internal must set exposure.data)."
            )

    async def _cleanup_after_failure(
        self: Any, reason: str, task: asyncio.Task | None = None
    ) -> None:
        task = task if task is not None else self._expose_task
        if task is not None:
            await _cancel_and_wait(task, self.cancel_grace)
        try:
            await asyncio.wait_for(self._abort_internal(), self.cancel_grace)
        except Exception as err:  # the original failure is what the user sees
            self.log(f"Abort after {reason} failed: {err}", 30)

    def _has_post_process(self: Any) -> bool:
        from .camera import BaseCamera

        return (
            type(self)._post_process_internal is not BaseCamera._post_process_internal
        )
