"""``finish``: end ``expose --count`` sequences after the current image."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from ..tools import get_cameras


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
async def finish(command: Command, cameras: tuple[str, ...]):
    """Ends the running --count sequences once the current image is written."""
    selected = get_cameras(command, cameras, check_cameras=False)
    if selected is None:
        return
    sequences = command.actor.sequences
    running = [camera.name for camera in selected if camera.name in sequences]
    if not running:
        return command.fail(error="No exposure sequence is running.")
    for name in running:
        sequences[name].finish_requested = True
    return command.finish(
        text=f"Sequence on {', '.join(running)} will end after the current image."
    )
