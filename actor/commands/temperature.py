"""``temperature``: read or set the CCD temperature."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, CoolerMixIn

from ..tools import (
    fail_per_camera,
    get_cameras,
    require,
    run_per_camera,
    split_values,
    to_json,
)


@click.command(cls=CluCommand)
@click.argument("ARGS", nargs=-1, type=str, metavar="[CAMERAS]... [TEMPERATURE]")
@click.option(
    "--ramp",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Ramp rate, °C per minute.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
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
        _, errors = await run_per_camera(cameras, lambda c: report(command, c))
        return fail_per_camera(command, errors) if errors else command.finish()

    async def set_and_wait(camera: BaseCamera) -> None:
        reached = await camera.set_temperature(set_point, ramp=ramp, timeout=timeout)
        if not reached:
            raise RuntimeError("the set point was changed by another command")
        await report(command, camera)

    _, errors = await run_per_camera(cameras, set_and_wait)
    if errors:
        return fail_per_camera(command, errors)
    return command.finish()


async def report(command: Command, camera: BaseCamera) -> None:
    """Writes the ``temperature`` keyword of one camera."""
    status = await camera.cooler_status()
    command.info(temperature=to_json({"camera": camera.name, **status}))
