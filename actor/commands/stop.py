"""``stop``: end the integration now and read out."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from ..tools import interrupt


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
async def stop(command: Command, cameras: tuple[str, ...]):
    """Ends the integration now and reads the frame out; ends any sequence."""
    await interrupt(
        command,
        cameras,
        lambda camera: camera.stop(),
        "stop",
        "stopped",
        check_cameras=True,
    )
