"""``set-default``: choose the cameras used when a command names none."""

from __future__ import annotations

import click
from clu import Command
from clu.parsers.click import CluCommand


@click.command(cls=CluCommand, name="set-default")
@click.argument("CAMERAS", nargs=-1, type=str, required=True)
@click.option(
    "-f",
    "--force",
    is_flag=True,
    help="Accept configured cameras that are not connected now.",
)
async def set_default(command: Command, cameras: tuple[str, ...], force: bool):
    """Sets the default cameras."""
    actor = command.actor
    system = actor.camera_system
    names = []
    for name in cameras:
        camera = system.get_camera(name=name) or system.get_camera(uid=name)
        if camera and (camera.connected or force):
            names.append(camera.name)
            continue
        config = system.get_camera_config(name=name) or system.get_camera_config(
            uid=name
        )
        if camera:
            return command.fail(
                error=f"camera {camera.name} is not connected; "
                "use --force to make it a default anyway."
            )
        if config is not None and force:
            names.append(config["name"])
            continue
        hint = " (configured but absent: use --force)" if config is not None else ""
        return command.fail(error=f"Unknown camera {name!r}{hint}.")
    names = list(dict.fromkeys(names))  # a name and its UID are one camera
    actor.set_default_cameras(names)
    return command.finish(default_cameras=names)
