"""``status``: report the state of each camera."""

from __future__ import annotations

from typing import Any

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import (
    BaseCamera,
    CoolerMixIn,
    GainMixIn,
    ImageAreaMixIn,
    ShutterMixIn,
)

from ..keywords import (
    area_keyword,
    binning_keyword,
    gain_keyword,
    shutter_keyword,
    temperature_keyword,
)
from ..tools import get_cameras, to_json


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
async def status(command: Command, cameras: tuple[str, ...]):
    """Reports status, exposure state and settings of the cameras."""
    actor = command.actor
    if cameras:
        selected = get_cameras(command, cameras, check_cameras=False)
        if selected is None:
            return
    else:  # every handled camera, connected or not
        selected = list(actor.camera_system.cameras)
    defaults = list(actor.default_cameras)
    if not selected:
        return command.finish(text="No cameras connected.", default_cameras=defaults)
    # One reply per camera, in order; the last camera's rides on the final
    # reply, which saves one broker message per command.
    errors = []
    pending: dict[str, Any] = {}
    for camera in selected:
        try:
            keywords = await camera_keywords(command, camera)
        except Exception as err:  # one broken camera must not hide the others
            errors.append(camera.name)
            command.warning(error={"camera": camera.name, "error": str(err)})
            continue
        if pending:
            command.info(**pending)
        pending = keywords
    if errors:
        if pending:
            command.info(**pending)
        return command.fail(
            error=f"Could not read the status of {', '.join(errors)}.",
            default_cameras=defaults,
        )
    # As a message: "status" would clash with set_status's own argument.
    return command.finish(message={**pending, "default_cameras": defaults})


async def camera_keywords(command: Command, camera: BaseCamera) -> dict[str, Any]:
    """Every status keyword of one camera, to be sent as a single reply."""
    info = camera.get_status(update=True)
    keywords: dict[str, Any] = {
        "status": to_json(
            {
                "camera": camera.name,
                "uid": camera.uid,
                "connected": camera.connected,
                "exposing": camera.exposing,
                "device": {
                    k: v
                    for k, v in info.items()
                    if k not in ("name", "uid", "connected", "exposure")
                },
            }
        ),
        "exposure_state": command.actor.bridge.exposure_state(camera.name),
    }
    if not camera.connected:
        return keywords
    if isinstance(camera, CoolerMixIn):
        keywords["temperature"] = await temperature_keyword(camera)
    if isinstance(camera, ImageAreaMixIn):
        keywords["binning"] = await binning_keyword(camera)
        keywords["area"] = await area_keyword(camera)
    if isinstance(camera, ShutterMixIn):
        keywords["shutter"] = shutter_keyword(camera, await camera.get_shutter())
    if isinstance(camera, GainMixIn):
        keywords["gain"] = await gain_keyword(camera)
    return keywords
