"""``binning``: read or set the binning."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, ImageAreaMixIn

from ..tools import fail_per_camera, get_cameras, require, run_per_camera, split_values


@click.command(cls=CluCommand)
@click.argument("ARGS", nargs=-1, type=str, metavar="[CAMERAS]... [H [V]]")
async def binning(command: Command, args: tuple[str, ...]):
    """Reports the binning, or sets it to H×V (V defaults to H)."""
    try:
        names, values = split_values(args, int, 2)
    except ValueError as err:
        return command.fail(error=f"Binning must be integers ≥ 1: {err}")
    cameras = get_cameras(command, names)
    if cameras is None or not require(command, cameras, ImageAreaMixIn, "binning"):
        return
    busy = [camera.name for camera in cameras if camera.exposing]
    if values and busy:
        return command.fail(error=f"camera {', '.join(busy)} is busy")

    async def apply(camera: BaseCamera) -> None:
        if values:
            hbin, vbin = await camera.set_binning(*values)
        else:
            hbin, vbin = await camera.get_binning()
        command.info(
            binning={"camera": camera.name, "horizontal": hbin, "vertical": vbin}
        )

    _, errors = await run_per_camera(cameras, apply)
    if errors:
        return fail_per_camera(command, errors)
    return command.finish()
