"""Which journal entry each camera event makes (`camera_core.journal`)."""

from __future__ import annotations

from typing import Any

from .events import CameraEvent

__all__ = ["EVENT_ENTRIES", "event_entry"]

#: The phase journaled for each camera event, and the state it sets (`None`
#: keeps the state).
EVENT_ENTRIES: dict[CameraEvent, tuple[str, str | None]] = {
    CameraEvent.EXPOSURE_FLUSHING: ("flushing", "exposing"),
    CameraEvent.EXPOSURE_INTEGRATING: ("integrating", None),
    CameraEvent.EXPOSURE_STOPPED: ("stopped", None),
    CameraEvent.EXPOSURE_READING: ("reading", None),
    CameraEvent.EXPOSURE_READ: ("read", "read"),
    CameraEvent.EXPOSURE_POST_PROCESSING: ("post_processing", None),
    CameraEvent.EXPOSURE_POST_PROCESS_DONE: ("post_process_done", None),
    CameraEvent.EXPOSURE_POST_PROCESS_FAILED: ("post_process_failed", None),
    CameraEvent.EXPOSURE_DONE: ("done", None),
    CameraEvent.EXPOSURE_WRITING: ("writing", "writing"),
    CameraEvent.EXPOSURE_WRITTEN: ("written", "written"),
    CameraEvent.EXPOSURE_SPOOLED: ("spooled", "spooled"),
    CameraEvent.EXPOSURE_FAILED: ("failed", "failed"),
    CameraEvent.EXPOSURE_ABORTED: ("aborted", "aborted"),
}

#: Event payload keys kept in the journal.
_EVENT_KEYS = (
    "camera",
    "filename",
    "path",
    "datasum",
    "checksum",
    "error",
    "stack_n",
    "stack_total",
)


def event_entry(
    event: Any, payload: dict[str, Any]
) -> tuple[str, str, str | None, dict[str, Any]] | None:
    """The ``(exposure_id, phase, state, fields)`` an event appends, or `None`.

    Only the events of `EVENT_ENTRIES` that name an exposure make an entry.
    """
    mapped = EVENT_ENTRIES.get(event)
    exposure_id = payload.get("exposure_id")
    if mapped is None or exposure_id is None:
        return None
    phase, state = mapped
    fields = {key: payload.get(key) for key in _EVENT_KEYS}
    if event is CameraEvent.EXPOSURE_WRITTEN:
        fields["spooled"] = False
    elif event is CameraEvent.EXPOSURE_SPOOLED:
        fields["spooled"] = True
    elif event is CameraEvent.EXPOSURE_DONE:
        fields = {"camera": payload.get("camera")}  # the write events tell
    if event is CameraEvent.EXPOSURE_FLUSHING:
        # Parameters of an exposure not requested through `requested`.
        fields["initial_parameters"] = {
            "image_type": payload.get("image_type"),
            "exptime": payload.get("exptime"),
            "stack": payload.get("stack_total"),
        }
    return str(exposure_id), phase, state, fields
