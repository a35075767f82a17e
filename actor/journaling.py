"""The actor's exposure journal: opening it, crash reports and exposure ids.

`ActorJournal` owns the actor's `~camera_core.journal.ExposureJournal`:
it opens it when the actor starts (reporting the exposures a crash
interrupted with an ``interrupted_exposures`` warning), feeds it the camera
events, and keeps the client-chosen exposure ids whose command is running, so
that a retry waits for the first command instead of taking a second frame.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camera_core.journal import ExposureJournal, JournalError

if TYPE_CHECKING:
    from camera_core import BaseCamera, Exposure

    from .actor import BaseCameraActor

__all__ = ["JOURNAL_NAME", "ActorJournal", "journal_path"]

log = logging.getLogger("camactor")

#: The journal's file name in the data directory, unless actor.journal is set.
JOURNAL_NAME = "journal.sqlite"


def journal_path(config: dict[str, Any]) -> Path:
    """The journal file of a validated configuration.

    ``actor.journal`` if set, else ``<actor.data_dir>/journal.sqlite``.
    """
    section = config.get("actor") or {}
    if section.get("journal"):
        return Path(section["journal"]).expanduser()
    data_dir = section.get("data_dir") or "~/camactor-data"
    return Path(data_dir).expanduser() / JOURNAL_NAME


def interrupted_keyword(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``interrupted_exposures`` value: what each lost exposure was doing."""
    return [
        {
            "exposure_id": record["exposure_id"],
            "request_id": record["request_id"],
            "camera": record["camera"],
            "state": record["state"],
            "started": record["started"],
            "filename": record["filename"],
            "error": record["error"],
        }
        for record in records
    ]


class ActorJournal:
    """The exposure journal of an actor and the exposure ids in progress.

    Parameters
    ----------
    path
        The journal file; `None` keeps the journal in memory (history and
        exposure ids then only cover this process).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.journal = ExposureJournal(self.path)
        #: Client-chosen exposure ids whose command is running, each with a
        #: future that is resolved when that command ends.
        self.requests: dict[str, asyncio.Future] = {}

    async def start(self, actor: BaseCameraActor) -> None:
        """Opens the journal, reports interrupted exposures, follows events.

        A journal that cannot be opened is replaced by one in memory, with an
        ``error`` saying so: the actor runs, without a journal on disk. The
        file, if it exists (e.g. in a read-only directory), is still read
        (read-only) for ``history`` and ``--exposure-id`` look-ups.
        """
        notifier = actor.camera_system.notifier
        self.journal.attach(notifier)  # before any await: no event is missed
        try:
            interrupted = await self.journal.open()
        except JournalError as err:
            await self.journal.close()
            self.journal = ExposureJournal(None, base=self.path)
            self.journal.attach(notifier)
            interrupted = await self.journal.open()
            message = (
                f"{err} Until the actor restarts with a usable journal, exposures "
                "are journaled in memory only."
            )
            log.error(message)
            actor.write("e", error=message, broadcast=True)
        if interrupted:
            names = ", ".join(record["exposure_id"] for record in interrupted)
            log.warning("Exposures interrupted by the last shutdown: %s", names)
            actor.write(
                "w",
                interrupted_exposures=interrupted_keyword(interrupted),
                broadcast=True,
            )

    async def stop(self) -> None:
        """Commits what is queued and closes the journal."""
        await self.journal.close()

    def requested(
        self,
        camera: BaseCamera,
        exposure_id: str,
        parameters: dict[str, Any],
        request_id: str | None,
    ) -> None:
        """Records an exposure about to be taken."""
        self.journal.requested(exposure_id, camera.name, parameters, request_id)

    def not_started(self, camera: BaseCamera, exposure_id: str, err: Exception) -> None:
        """Records an exposure that failed, unless its camera events tell.

        ``camera.expose`` emits ``EXPOSURE_FAILED`` or ``EXPOSURE_ABORTED``
        for every exposure it started; one refused before it started (camera
        busy or disconnected, bad value) has no event.
        """
        if camera.progress.exposure_id != exposure_id:
            error = str(err) or type(err).__name__
            self.journal.append(
                exposure_id, "failed", "failed", camera=camera.name, error=error
            )

    def unsaved(self, exposure: Exposure, err: Exception) -> None:
        """Records a frame that neither its target nor the spool could take."""
        self.journal.append(
            exposure.exposure_id,
            "unsaved",
            "unsaved",
            camera=exposure.camera.name,
            filename=exposure.filename,
            error=str(err),
        )
