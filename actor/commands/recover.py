"""``recover``: write spooled frames and frames held in memory to their targets.

Also reports frames that could be written nowhere (`report_unsaved`), which
only this command can save.
"""

from __future__ import annotations

from pathlib import Path

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import Exposure, ExposureWriteError
from camera_core.spool import RecoverResult

from ..cli_recover import spool_dirs
from ..tools import to_json

__all__ = ["recover", "report_unsaved"]


def _recovered(result: RecoverResult) -> dict:
    return to_json(
        {
            "camera": result.camera,
            "exposure_id": result.exposure_id,
            "filename": result.target,
            "path": result.spool_file,
            "source": result.source,
            "recovered": result.recovered,
            "written_to": result.path,
            "error": result.error,
        }
    )


@click.command(cls=CluCommand)
async def recover(command: Command):
    """Writes spooled frames and frames held in memory to their targets.

    No file is ever replaced: a frame whose target holds another file is
    written next to it as ``<stem>-recovered-<N><suffix>`` (``written_to``).
    """
    system = command.actor.camera_system
    dirs: list[Path] = spool_dirs(system.config)
    dirs += [Path(camera.spool_dir).expanduser() for camera in system.cameras]
    results = await system.recover(spool_dirs=dirs)
    for result in results:
        reply = command.info if result.recovered else command.warning
        reply(recovered=_recovered(result))
        _journal(command, result)
    if not results:
        return command.finish(text="Nothing to recover: no frame in memory or spool.")
    done = sum(result.recovered for result in results)
    if done < len(results):
        return command.fail(
            error=f"{len(results) - done} of {len(results)} frames not recovered "
            "(see the recovered keywords): free space or fix permissions and run "
            "recover again."
        )
    return command.finish(text=f"Recovered {done} frames.")


def _journal(command: Command, result: RecoverResult) -> None:
    """Records a spooled frame's new home in the exposure journal.

    Frames recovered from memory are written by `Exposure.write`, whose events
    the journal records already.
    """
    if not (result.recovered and result.source == "spool" and result.exposure_id):
        return
    journal = getattr(command.actor, "journal", None)
    if journal is None:
        return
    journal.journal.append(
        result.exposure_id,
        "recovered",
        "written",
        filename=None if result.target is None else str(result.target),
        path=None if result.path is None else str(result.path),
        spooled=False,
        error=None,
    )


def report_unsaved(
    command: Command, exposure: Exposure, error: ExposureWriteError
) -> ExposureWriteError:
    """Broadcasts a critical ``unsaved_frame`` for a frame held in memory.

    Returns
    -------
    error
        The error to fail the command with: what happened and what to do.
    """
    camera = exposure.camera
    held = len(command.actor.camera_system.unsaved_exposures)
    cause = str(error.__cause__ or error)
    command.actor.write(
        "!",
        unsaved_frame=to_json(
            {
                "camera": camera.name,
                "exposure_id": exposure.exposure_id,
                "filename": exposure.filename,
                "spool_dir": camera.spool_dir,
                "error": cause,
                "in_memory": held,
            }
        ),
        broadcast=True,
    )
    return ExposureWriteError(
        f"frame {exposure.exposure_id} NOT WRITTEN to disk nor spool ({cause}); "
        f"it is held in memory ({held} frame(s) in all): free space or fix "
        "permissions, then send 'recover' (stopping the actor loses them)."
    )
