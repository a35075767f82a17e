"""``abort``: discard the exposures in progress."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from ..tools import interrupt


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
async def abort(command: Command, cameras: tuple[str, ...]):
    """Aborts the current exposure (and any --count sequence), discarding it."""
    await interrupt(
        command,
        cameras,
        lambda camera: camera.abort(),
        "abort",
        "aborted",
        check_cameras=False,
    )
