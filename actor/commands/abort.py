"""``abort``: discard the exposures in progress."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from ..tools import fail_per_camera, get_cameras, run_per_camera


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
async def abort(command: Command, cameras: tuple[str, ...]):
    """Aborts the current exposure (and any --count sequence), discarding it."""
    selected = get_cameras(command, cameras, check_cameras=False)
    if selected is None:
        return
    exposing = [camera for camera in selected if camera.exposing]
    if not exposing:
        return command.fail(error="No exposure in progress to abort.")
    for camera in exposing:
        sequence = command.actor.sequences.get(camera.name)
        if sequence is not None:
            sequence.finish_requested = True
    _, errors = await run_per_camera(exposing, lambda camera: camera.abort())
    if errors:
        return fail_per_camera(command, errors)
    return command.finish(text=f"Aborted {', '.join(c.name for c in exposing)}.")
