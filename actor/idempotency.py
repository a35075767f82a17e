"""Idempotent exposures: ``expose --exposure-id ID`` takes its frames once.

A client that lost its connection may send the same ``expose`` again. With the
same client-chosen id, the actor takes no new frame: it reports the outcome of
the first command (its ``filename`` keywords or errors), waiting for it first
if it is still running. The journal keeps the outcome, so this holds after an
actor restart too; an exposure that the restart interrupted is reported as
failed, never taken again.

An id whose first command took no frame (refused before exposing: unknown
camera, camera busy, ...) can be sent again and is then taken. So can an id
refused because the journal could not record it (its disk full or read-only):
an id is only used once its ``requested`` entry is on disk, so that no retry,
even after a restart, takes a second frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from camera_core.journal import JournalError

from .tools import to_json

if TYPE_CHECKING:
    from clu import Command

    from camera_core import BaseCamera

__all__ = [
    "EXPOSURE_ID_HELP",
    "UnjournaledIdError",
    "check_exposure_id",
    "frame_id",
    "journaled_frame",
    "run_once",
]

_EXPOSURE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: The help of ``expose --exposure-id``.
EXPOSURE_ID_HELP = (
    "Client-chosen id (1-64 letters, digits, '_', '.', '-'). Sent again, no "
    "new frame is taken: the first command's outcome is reported (after it "
    "ends, if running), also after an actor restart. The frame's exposure_id "
    "is ID for one camera and --count 1, else ID@CAMERA.N (N from 1). Refused, "
    "with no frame taken, while the exposure journal cannot be written (disk "
    "full or read-only); exposing without --exposure-id still works."
)

#: States of a journaled exposure whose frame is saved.
_SAVED = ("written", "spooled")

#: Request keys shown when a reused id does not match.
_REQUEST_KEYS = (
    "cameras",
    "exptime",
    "image_type",
    "stack",
    "count",
    "filename",
    "num",
    "postprocess",
    "timeout",
)


class UnjournaledIdError(RuntimeError):
    """An ``--exposure-id`` frame not taken: the journal could not record it."""


def check_exposure_id(value: str) -> str | None:
    """Why ``value`` is not a valid ``--exposure-id``, or `None` if it is."""
    if _EXPOSURE_ID.fullmatch(value):
        return None
    shown = value if len(value) <= 40 else value[:40] + "..."
    return (
        f"Invalid --exposure-id {shown!r}: use 1 to 64 letters, digits, '_', "
        "'.' or '-', starting with a letter or a digit."
    )


def frame_id(request_id: str | None, camera: str, index: int, single: bool) -> str:
    """The exposure id of a frame of an ``expose`` command.

    Parameters
    ----------
    request_id
        The ``--exposure-id``, or `None` for a new random id.
    camera
        The camera name.
    index
        The frame's index in the ``--count`` sequence (from 0).
    single
        Whether the command takes a single frame (one camera, ``--count 1``).
    """
    if request_id is None:
        return uuid.uuid4().hex[:12]
    return request_id if single else f"{request_id}@{camera}.{index + 1}"


async def run_once(
    command: Command,
    request_id: str,
    request: dict[str, Any],
    run: Callable[[], Awaitable[Any]],
) -> None:
    """Runs ``run`` unless ``request_id`` was taken; else reports its outcome.

    Parameters
    ----------
    command
        The ``expose`` command.
    request_id
        The client-chosen ``--exposure-id``.
    request
        What the command asks for (JSON values); a retry must ask the same.
    run
        Takes the exposures and ends the command.
    """
    journal = command.actor.journal
    while (pending := journal.requests.get(request_id)) is not None:
        command.info(
            text=f"Exposure {request_id} is already running (sent earlier); "
            "waiting for its outcome."
        )
        await asyncio.shield(pending)
    done = asyncio.get_running_loop().create_future()
    journal.requests[request_id] = done
    try:
        try:
            records = await journal.journal.find(request_id)
        except JournalError as err:
            return command.fail(
                error=f"Cannot look up --exposure-id {request_id} in the journal: "
                f"{err} Retry later, or send the command without --exposure-id."
            )
        # Only an exposure taken for this client id answers a retry: never one
        # whose own random id happens to equal it, nor one without a request.
        records = [
            record
            for record in records
            if record.get("request_id") == request_id
            and record["parameters"].get("request") is not None
        ]
        if records:
            return replay(command, request_id, request, records)
        await run()
    finally:
        if journal.requests.get(request_id) is done:
            del journal.requests[request_id]
        done.set_result(None)


def replay(
    command: Command,
    request_id: str,
    request: dict[str, Any],
    records: list[dict[str, Any]],
) -> None:
    """Reports the journaled outcome of an exposure id and ends the command."""
    original = records[0]["parameters"].get("request")
    changes = ", ".join(
        f"{key} {original.get(key)!r} (now {request.get(key)!r})"
        for key in _REQUEST_KEYS
        if original is not None and original.get(key) != request.get(key)
    )
    if changes:
        return command.fail(
            error=f"--exposure-id {request_id} was already used for another "
            f"exposure ({changes}); send a new id to take a new one."
        )
    errors: list[tuple[str, str]] = []
    for record in records:
        camera = record["camera"] or "?"
        if record["state"] in _SAVED and record["path"]:
            reply = command.warning if record["spooled"] else command.info
            reply(
                filename=to_json(
                    {
                        "camera": camera,
                        "exposure_id": record["exposure_id"],
                        "filename": record["filename"] or record["path"],
                        "path": record["path"],
                        "datasum": record["datasum"],
                        "checksum": record["checksum"],
                        "spooled": bool(record["spooled"]),
                    }
                )
            )
        else:
            error = record["error"] or f"never saved (state {record['state']})"
            errors.append((camera, f"{record['exposure_id']}: {error}"))
    if errors:
        for camera, error in errors:
            command.error(error={"camera": camera, "error": error})
        summary = "; ".join(f"{camera}: {error}" for camera, error in errors)
        return command.fail(
            error=f"Exposure {request_id} was already taken and did not succeed "
            f"(no new frame taken): {summary}"
        )
    return command.finish(
        text=f"Exposure {request_id} was already taken; this is its outcome "
        "(no new frame taken)."
    )


@contextlib.asynccontextmanager
async def journaled_frame(
    command: Command,
    camera: BaseCamera,
    index: int,
    single: bool,
    parameters: dict[str, Any],
    request_id: str | None = None,
) -> AsyncIterator[str]:
    """Journals a frame about to be taken; yields its exposure id.

    With a client-chosen id the entry is on disk before the frame is taken,
    so that a retry after a crash finds it; if it cannot be written the entry
    is retracted and `UnjournaledIdError` raised: no frame is taken, and the
    id can be sent again. A frame that fails before the camera started it is
    journaled as failed.
    """
    journal = command.actor.journal
    exposure_id = frame_id(request_id, camera.name, index, single)
    journal.requested(camera, exposure_id, parameters, request_id)
    try:
        if request_id is not None:
            try:
                await journal.journal.flush()
            except JournalError as err:
                if await journal.journal.retract(exposure_id):
                    raise UnjournaledIdError(
                        f"--exposure-id {request_id} refused, no frame taken: the "
                        f"exposure journal cannot record it, so a retry could not "
                        f"be recognised after a restart ({err}) Free space on the "
                        "journal's disk (or make it writable) and send it again; "
                        "expose without --exposure-id still works."
                    ) from err
                # Committed meanwhile (the disk came back): take the frame.
        yield exposure_id
    except UnjournaledIdError:
        raise
    except BaseException as err:
        journal.not_started(camera, exposure_id, err)
        raise
