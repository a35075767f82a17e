"""``area``: read or set the image area (region of interest)."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, ImageAreaMixIn

from ..keywords import area_keyword
from ..tools import fail_if_busy, finish_per_camera, get_cameras, require, split_values


@click.command(cls=CluCommand)
@click.argument("ARGS", nargs=-1, type=str, metavar="[CAMERAS]... [X0 X1 Y0 Y1]")
@click.option("--reset", is_flag=True, help="Restore the full frame.")
async def area(command: Command, args: tuple[str, ...], reset: bool):
    """Reports the image area, or sets it (1-based, inclusive, unbinned)."""
    try:
        names, values = split_values(args, int, 4)
    except ValueError as err:
        return command.fail(error=f"The area must be integers: {err}")
    if values and len(values) != 4:
        return command.fail(error="The area needs four integers: X0 X1 Y0 Y1.")
    if values and reset:
        return command.fail(error="Give either X0 X1 Y0 Y1 or --reset, not both.")
    cameras = get_cameras(command, names)
    if cameras is None or not require(command, cameras, ImageAreaMixIn, "image area"):
        return
    if (values or reset) and fail_if_busy(command, cameras):
        return

    async def apply(camera: BaseCamera) -> None:
        if values or reset:
            await camera.set_image_area(tuple(values) if values else None)
        command.info(area=await area_keyword(camera))

    await finish_per_camera(command, cameras, apply)
