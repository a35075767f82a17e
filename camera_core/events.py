"""Enumerations of the events emitted by camera systems and cameras."""

from __future__ import annotations

import enum

__all__ = ["TERMINAL_EVENTS", "CameraEvent", "CameraSystemEvent", "ExposurePhase"]


class CameraSystemEvent(enum.Enum):
    """Enumeration of camera system events."""

    CAMERA_ADDED = 1
    CAMERA_REMOVED = 2


class CameraEvent(enum.Enum):
    """Enumeration of camera events.

    The values are those of basecam, plus the terminal events that basecam lacks
    (``EXPOSURE_ABORTED``, ``EXPOSURE_SPOOLED``, ``SET_POINT_FAILED``) and the
    ``EXPOSURE_STOPPED`` event emitted when an integration is cut short by
    `~camera_core.camera.BaseCamera.stop`.
    """

    CAMERA_CONNECTED = "connected"
    CAMERA_CONNECT_FAILED = "connect_failed"
    CAMERA_DISCONNECTED = "disconnected"
    CAMERA_DISCONNECT_FAILED = "disconnect_failed"
    EXPOSURE_IDLE = "idle"
    EXPOSURE_FLUSHING = "flushing"
    EXPOSURE_INTEGRATING = "integrating"
    EXPOSURE_READING = "reading"
    EXPOSURE_READ = "read"
    EXPOSURE_DONE = "done"
    EXPOSURE_FAILED = "failed"
    EXPOSURE_ABORTED = "aborted"
    EXPOSURE_STOPPED = "stopped"
    EXPOSURE_WRITING = "writing"
    EXPOSURE_WRITTEN = "written"
    EXPOSURE_SPOOLED = "spooled"
    EXPOSURE_POST_PROCESSING = "post_processing"
    EXPOSURE_POST_PROCESS_DONE = "post_process_done"
    EXPOSURE_POST_PROCESS_FAILED = "post_process_failed"
    NEW_SET_POINT = "new_set_point"
    SET_POINT_REACHED = "set_point_reached"
    SET_POINT_FAILED = "set_point_failed"


class ExposurePhase(enum.Enum):
    """The phase an exposure is in, as reported by the camera's progress."""

    IDLE = "idle"
    FLUSHING = "flushing"
    INTEGRATING = "integrating"
    READING = "reading"
    STACKING = "stacking"
    POST_PROCESSING = "post_processing"
    WRITING = "writing"
    DONE = "done"
    FAILED = "failed"
    ABORTED = "aborted"


#: Events after which an exposure is over, one way or another.
TERMINAL_EVENTS = frozenset(
    {
        CameraEvent.EXPOSURE_DONE,
        CameraEvent.EXPOSURE_FAILED,
        CameraEvent.EXPOSURE_ABORTED,
    }
)
