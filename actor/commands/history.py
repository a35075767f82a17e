"""``history``: the last exposures, from the exposure journal."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core.journal import JournalError

from ..tools import to_json

#: Most records one ``history`` reports.
MAX_LAST = 500


@click.command(cls=CluCommand)
@click.option(
    "--camera",
    type=str,
    default=None,
    help="Only this camera's exposures (also a camera no longer connected).",
)
@click.option(
    "--last",
    type=click.IntRange(1, MAX_LAST),
    default=10,
    show_default=True,
    help="How many of the most recent exposures.",
)
async def history(command: Command, camera: str | None, last: int):
    """Reports the last exposures from the journal, oldest first.

    One exposure_record keyword per exposure: its parameters, phases with UTC
    times, file, checksum, state and error.
    """
    journal = command.actor.journal
    try:
        records = await journal.journal.history(camera=camera, last=last)
    except JournalError as err:
        return command.fail(error=f"Cannot read the exposure journal: {err}")
    for record in records:
        command.info(exposure_record=to_json(record))
    if not records:
        where = f" of camera {camera}" if camera is not None else ""
        return command.finish(text=f"No exposures{where} in the journal.")
    return command.finish(text=f"{len(records)} exposures, oldest first.")
