"""``temperature``: read or set the CCD temperature."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, CoolerMixIn

from ..keywords import temperature_keyword
from ..params import FiniteFloatRange
from ..tools import (
    finish_per_camera,
    get_cameras,
    require,
    split_values,
)


@click.command(cls=CluCommand)
@click.argument("ARGS", nargs=-1, type=str, metavar="[CAMERAS]... [TEMPERATURE]")
@click.option(
    "--ramp",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    help="Ramp rate, °C per minute.",
)
@click.option(
    "--timeout",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to reach the set point (default: the camera's).",
)
async def temperature(
    command: Command, args: tuple[str, ...], ramp: float | None, timeout: float | None
):
    """Reports the temperature, or sets TEMPERATURE (°C; 0 is valid) and waits."""
    try:
        names, values = split_values(args, float, 1)
    except ValueError as err:
        return command.fail(error=str(err))
    cameras = get_cameras(command, names)
    if cameras is None or not require(command, cameras, CoolerMixIn, "cooler"):
        return
    set_point = values[0] if values else None
    if set_point is None:
        if ramp is not None or timeout is not None:
            return command.fail(error="--ramp and --timeout need a TEMPERATURE.")
        return await finish_per_camera(command, cameras, lambda c: report(command, c))

    async def set_and_wait(camera: BaseCamera) -> None:
        reached = await camera.set_temperature(set_point, ramp=ramp, timeout=timeout)
        if not reached:
            raise RuntimeError("the set point was changed by another command")
        await report(command, camera)

    await finish_per_camera(command, cameras, set_and_wait)


async def report(command: Command, camera: BaseCamera) -> None:
    """Writes the ``temperature`` keyword of one camera."""
    command.info(temperature=await temperature_keyword(camera))
