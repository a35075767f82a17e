"""``shutter``: read, open or close the shutter."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, ShutterMixIn

from ..keywords import shutter_keyword
from ..tools import fail_if_busy, finish_per_camera, get_cameras, require


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
@click.option("--open", "open_", is_flag=True, help="Open the shutter.")
@click.option("--close", is_flag=True, help="Close the shutter.")
async def shutter(command: Command, cameras: tuple[str, ...], open_: bool, close: bool):
    """Reports the shutter position, or opens/closes it."""
    if open_ and close:
        return command.fail(error="Give either --open or --close, not both.")
    position = "open" if open_ else "closed" if close else None
    selected = get_cameras(command, cameras)
    if selected is None or not require(command, selected, ShutterMixIn, "shutter"):
        return
    if position is not None and fail_if_busy(command, selected):
        return

    async def move(camera: BaseCamera) -> None:
        if position is None:
            is_open = await camera.get_shutter()
        else:
            is_open = await camera.set_shutter(position == "open")
        command.info(shutter=shutter_keyword(camera, is_open))

    await finish_per_camera(command, selected, move)
