"""``list``: the cameras the actor handles."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core.utils import maybe_await


@click.command(cls=CluCommand, name="list")
@click.option(
    "--available",
    is_flag=True,
    help="Also list the UIDs the camera system reports as available.",
)
async def list_cameras(command: Command, available: bool):
    """Lists the cameras (connected or not) and the default cameras."""
    actor = command.actor
    system = actor.camera_system
    command.info(
        cameras=[
            {"camera": camera.name, "uid": camera.uid, "connected": camera.connected}
            for camera in system.cameras
        ]
    )
    command.info(default_cameras=list(actor.default_cameras))
    if available:
        try:
            uids = await maybe_await(system.list_available_cameras())
        except Exception as err:
            return command.fail(error=f"Cannot list available cameras: {err}")
        command.info(available_cameras=[str(uid) for uid in uids])
    return command.finish()
