"""``area``: read or set the image area (region of interest)."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, ImageAreaMixIn

from ..tools import fail_per_camera, get_cameras, require, run_per_camera, split_values


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
    busy = [camera.name for camera in cameras if camera.exposing]
    if (values or reset) and busy:
        return command.fail(error=f"camera {', '.join(busy)} is busy")

    async def apply(camera: BaseCamera) -> None:
        if values or reset:
            x0, x1, y0, y1 = await camera.set_image_area(
                tuple(values) if values else None
            )
        else:
            x0, x1, y0, y1 = await camera.get_image_area()
        command.info(
            area={"camera": camera.name, "x0": x0, "x1": x1, "y0": y0, "y1": y1}
        )

    _, errors = await run_per_camera(cameras, apply)
    if errors:
        return fail_per_camera(command, errors)
    return command.finish()
