"""``capabilities``: what each camera can do."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from ..tools import get_cameras, to_json


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
async def capabilities(command: Command, cameras: tuple[str, ...]):
    """Reports the capabilities and limits of the cameras."""
    selected = get_cameras(command, cameras, check_cameras=False)
    if selected is None:
        return
    for camera in selected:
        command.info(
            capabilities=to_json({"camera": camera.name, **camera.capabilities})
        )
    return command.finish()
