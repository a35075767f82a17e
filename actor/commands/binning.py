"""``binning``: read or set the binning."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, ImageAreaMixIn

from ..keywords import binning_keyword
from ..tools import fail_if_busy, finish_per_camera, get_cameras, require, split_values


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
    if values and fail_if_busy(command, cameras):
        return

    async def apply(camera: BaseCamera) -> None:
        if values:
            await camera.set_binning(*values)
        command.info(binning=await binning_keyword(camera))

    await finish_per_camera(command, cameras, apply)
