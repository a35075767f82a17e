"""Stopping an actor without losing a frame silently.

``expose`` writes each frame in a background task (actor.commands.expose) that
may be retrying a failed write, with backoff, when the actor is told to stop.
`PendingWrites` keeps those tasks; `finish_writes` waits for them (bounded) when
the actor stops, before the cameras are disconnected, and `report_unsaved` logs
at CRITICAL every frame that is then still in memory only, so that the launcher
can exit non-zero (actor.daemon).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from camera_core import Exposure

__all__ = ["DEFAULT_STOP_TIMEOUT", "PendingWrites", "finish_writes", "report_unsaved"]

#: Seconds a stopping actor waits for the frames still being written.
DEFAULT_STOP_TIMEOUT = 60.0


class PendingWrites:
    """The frame writes running in the background, and their exposures."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task, Exposure] = {}

    def add(self, task: asyncio.Task, exposure: Exposure) -> None:
        """Keeps ``task`` (writing ``exposure``) until it is done."""
        self._tasks[task] = exposure
        task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task]:
        return iter(list(self._tasks))

    def exposures(self) -> list[Exposure]:
        """The exposures still being written."""
        return list(self._tasks.values())


def _describe(exposure: Exposure) -> str:
    return f"{exposure.camera.name}:{exposure.exposure_id} ({exposure.filename})"


async def finish_writes(actor: Any, timeout: float) -> list[Exposure]:
    """Ends the sequences and waits for the frames being written.

    Parameters
    ----------
    actor
        A `~actor.actor.BaseCameraActor` with ``pending_writes``,
        ``sequences`` and ``log``.
    timeout
        Longest wait, in seconds, for all the writes together.

    Returns
    -------
    still_writing
        The exposures whose write had not ended by then.
    """
    for sequence in actor.sequences.values():
        sequence.finish_requested = True  # no new frame once the current one ends
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(actor.pending_writes):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        frames = ", ".join(_describe(e) for e in actor.pending_writes.exposures())
        actor.log.warning(
            f"Stopping: waiting up to {remaining:.0f} s for "
            f"{len(actor.pending_writes)} frame(s) being written: {frames}."
        )
        await asyncio.wait(list(actor.pending_writes), timeout=remaining)
    return actor.pending_writes.exposures()


def report_unsaved(
    actor: Any, still_writing: list[Exposure], timeout: float
) -> list[Exposure]:
    """Logs at CRITICAL each frame that is saved nowhere; returns them.

    Parameters
    ----------
    actor
        The stopping actor (its camera system and log).
    still_writing
        Exposures `finish_writes` gave up on.
    timeout
        The wait they were given, for the message.
    """
    failed = [
        e for e in actor.camera_system.unsaved_exposures if e not in still_writing
    ]
    for exposure, why in [
        *(
            (e, f"its write was still running after {timeout:g} s")
            for e in still_writing
        ),
        *((e, "its write and its spool write failed") for e in failed),
    ]:
        actor.log.critical(
            f"Frame {exposure.exposure_id} of camera {exposure.camera.name} is NOT "
            f"SAVED: it is neither in {exposure.filename} nor in the spool "
            f"{exposure.camera.spool_dir} ({why}). Its data is lost when the actor "
            "exits."
        )
    return [*still_writing, *failed]
