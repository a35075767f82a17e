"""Honest exposure progress: phase, elapsed, remaining and total time."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from .events import CameraEvent, ExposurePhase

__all__ = ["EVENT_PHASES", "ExposureProgress"]

#: The progress phase entered when a camera emits each event.
EVENT_PHASES: dict[CameraEvent, ExposurePhase] = {
    CameraEvent.EXPOSURE_IDLE: ExposurePhase.IDLE,
    CameraEvent.EXPOSURE_FLUSHING: ExposurePhase.FLUSHING,
    CameraEvent.EXPOSURE_INTEGRATING: ExposurePhase.INTEGRATING,
    CameraEvent.EXPOSURE_READING: ExposurePhase.READING,
    CameraEvent.EXPOSURE_POST_PROCESSING: ExposurePhase.POST_PROCESSING,
    CameraEvent.EXPOSURE_WRITING: ExposurePhase.WRITING,
    CameraEvent.EXPOSURE_DONE: ExposurePhase.DONE,
    CameraEvent.EXPOSURE_FAILED: ExposurePhase.FAILED,
    CameraEvent.EXPOSURE_ABORTED: ExposurePhase.ABORTED,
}


@dataclasses.dataclass
class ExposureProgress:
    """Where a camera's current exposure is.

    Times are in seconds of camera time: wall-clock seconds divided by the
    camera's ``time_factor`` (1 for real cameras), so a simulated exposure
    reports the same numbers as a real one.

    Attributes
    ----------
    camera
        The camera name.
    exposure_id
        The id of the exposure in progress, or of the last one.
    phase
        The current phase.
    image_type, exptime
        The type and per-frame exposure time of the exposure.
    stack_n, stack_total
        The frame being taken (1-based) and the number of frames to stack.
    error
        The error of the last exposure, if it failed.
    """

    camera: str
    exposure_id: str | None = None
    phase: ExposurePhase = ExposurePhase.IDLE
    image_type: str | None = None
    exptime: float | None = None
    stack_n: int = 0
    stack_total: int = 0
    error: str | None = None
    time_factor: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _start: float | None = None
    _integration_start: float | None = None
    _integrated: float = 0.0
    _remote_remaining: float | None = None

    def begin(self, exposure_id: str, image_type: str, exptime: float, stack: int):
        """Resets the progress for a new exposure."""
        self.exposure_id = exposure_id
        self.image_type = image_type
        self.exptime = exptime
        self.stack_n = 0
        self.stack_total = stack
        self.error = None
        self.phase = ExposurePhase.FLUSHING
        self._start = self.clock()
        self._integration_start = None
        self._integrated = 0.0
        self._remote_remaining = None

    def set_phase(self, phase: ExposurePhase) -> None:
        """Enters a phase, accounting integration time when one ends."""
        if self.phase is ExposurePhase.INTEGRATING and phase is not self.phase:
            self._integrated += self._current_integration()
            self._integration_start = None
        if phase is ExposurePhase.INTEGRATING and self.phase is not phase:
            self._integration_start = self.clock()
            self._remote_remaining = None
        self.phase = phase

    def set_remaining(self, remaining: float | None) -> None:
        """Overrides the remaining integration time of the current frame.

        For drivers whose device reports its own countdown (e.g. INDI).
        """
        self._remote_remaining = remaining

    def _current_integration(self) -> float:
        if self._integration_start is None:
            return 0.0
        elapsed = (self.clock() - self._integration_start) / self.time_factor
        return elapsed if self.exptime is None else min(elapsed, self.exptime)

    @property
    def total(self) -> float:
        """Total integration time of the exposure (exptime × stack), seconds."""
        if self.exptime is None:
            return 0.0
        return self.exptime * max(self.stack_total, 1)

    @property
    def elapsed(self) -> float:
        """Seconds since the exposure started."""
        if self._start is None:
            return 0.0
        return (self.clock() - self._start) / self.time_factor

    @property
    def remaining(self) -> float:
        """Integration seconds left, counting down while integrating."""
        if self.exptime is None or self.phase in (
            ExposurePhase.IDLE,
            ExposurePhase.DONE,
            ExposurePhase.FAILED,
            ExposurePhase.ABORTED,
        ):
            return 0.0
        frames_left = max(self.stack_total - max(self.stack_n, 1), 0)
        if self._remote_remaining is not None:
            current = self._remote_remaining
        elif self.phase is ExposurePhase.INTEGRATING:
            current = self.exptime - self._current_integration()
        elif self.stack_n == 0 or self.phase is ExposurePhase.FLUSHING:
            current = self.exptime
        else:
            current = 0.0
        return max(current, 0.0) + frames_left * self.exptime

    @property
    def active(self) -> bool:
        """Whether an exposure is in progress."""
        return self.phase not in (
            ExposurePhase.IDLE,
            ExposurePhase.DONE,
            ExposurePhase.FAILED,
            ExposurePhase.ABORTED,
        )

    def to_dict(self) -> dict[str, Any]:
        """Returns the progress as JSON-compatible values."""
        return {
            "camera": self.camera,
            "exposure_id": self.exposure_id,
            "phase": self.phase.value,
            "image_type": self.image_type,
            "exptime": None if self.exptime is None else float(self.exptime),
            "elapsed": round(self.elapsed, 3),
            "remaining": round(self.remaining, 3),
            "total": round(self.total, 3),
            "stack_n": int(self.stack_n),
            "stack_total": int(self.stack_total),
            "error": self.error,
        }
