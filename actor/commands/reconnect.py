"""``reconnect``: disconnect and connect cameras again."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera

from ..params import FiniteFloatRange
from ..tools import fail_per_camera, get_cameras, run_per_camera


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
@click.option(
    "--timeout",
    type=FiniteFloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds allowed per camera.",
)
async def reconnect(command: Command, cameras: tuple[str, ...], timeout: float):
    """Reconnects cameras (all handled cameras by default)."""
    selected = get_cameras(command, cameras, check_cameras=False)
    if selected is None:
        return

    async def cycle(camera: BaseCamera) -> None:
        if camera.connected:
            await camera.disconnect()
        await camera.connect()

    _, errors = await run_per_camera(selected, cycle, timeout=timeout)
    for camera in selected:
        if camera.name not in errors:
            command.info(camera_connected={"camera": camera.name, "uid": camera.uid})
    if errors:
        return fail_per_camera(command, errors)
    return command.finish()
