"""``camactor status``: the running actor's camera status, for people.

It sends ``status`` to the actor over the broker and prints one block per
camera: connection, exposure phase, cooler, binning, area, shutter and gain.
``--json`` prints the keywords instead, one JSON object per camera.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import click

from .cli_client import ActorClientError, actor_client, command_error
from .cli_progress import describe
from .daemon import CliState

__all__ = ["format_status", "status_command"]

#: The keywords of ``status`` that describe one camera.
CAMERA_KEYWORDS = (
    "status",
    "exposure_state",
    "temperature",
    "binning",
    "area",
    "shutter",
    "gain",
)


def by_camera(messages: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Groups the per-camera keywords of ``status`` replies by camera."""
    cameras: dict[str, dict[str, Any]] = {}
    for message in messages:
        for keyword in CAMERA_KEYWORDS:
            value = message.get(keyword)
            if isinstance(value, dict) and "camera" in value:
                cameras.setdefault(value["camera"], {})[keyword] = value
    return cameras


def _number(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.1f}{unit}"


def format_status(camera: str, keywords: dict[str, Any]) -> list[str]:
    """The lines describing one camera."""
    status = keywords.get("status", {})
    connected = "connected" if status.get("connected") else "DISCONNECTED"
    lines = [f"{camera} ({status.get('uid', '?')}): {connected}"]
    if "exposure_state" in keywords:
        lines.append("  exposure     " + describe(keywords["exposure_state"]))
    temperature = keywords.get("temperature")
    if temperature is not None:
        state = "ramping" if temperature.get("ramping") else (
            "reached" if temperature.get("reached") else "not reached"
        )  # fmt: skip
        lines.append(
            f"  temperature  {_number(temperature.get('ccd_temp'), ' °C')}, set "
            f"point {_number(temperature.get('set_point'), ' °C')} ({state}), "
            f"cooler {_number(temperature.get('cooler_power'), ' %')}"
        )
    binning, area = keywords.get("binning"), keywords.get("area")
    if binning is not None and area is not None:
        lines.append(
            f"  binning      {binning['horizontal']}x{binning['vertical']}, area "
            f"x {area['x0']}-{area['x1']}, y {area['y0']}-{area['y1']}"
        )
    if "shutter" in keywords:
        lines.append(f"  shutter      {keywords['shutter']['shutter']}")
    gain = keywords.get("gain")
    if gain is not None:
        lines.append(
            f"  gain         {gain.get('gain')}, offset {gain.get('offset')}, "
            f"readout mode {gain.get('readout_mode')}"
        )
    return lines


async def fetch_status(config: dict[str, Any], timeout: float) -> list[dict]:
    """The messages of the actor's replies to ``status``."""
    actor = config["actor"]["name"]
    async with actor_client(config, timeout) as client:
        command = await client.send_command(actor, "status", time_limit=timeout)
    if not command.status.did_succeed:
        raise ActorClientError(command_error(command, timeout))
    return [reply.message for reply in command.replies]


@click.command("status")
@click.option("--timeout", type=float, default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per camera.")
@click.pass_obj
def status_command(state: CliState, timeout: float, as_json: bool) -> None:
    """Print the status of the running actor's cameras."""
    try:
        messages = asyncio.run(fetch_status(state.config, timeout))
    except ActorClientError as err:
        raise click.ClickException(str(err)) from None
    cameras = by_camera(messages)
    defaults = [m["default_cameras"] for m in messages if "default_cameras" in m]
    if as_json:
        for camera, keywords in cameras.items():
            click.echo(json.dumps({"camera": camera, **keywords}))
        return
    if not cameras:
        click.echo("No cameras.")
    for camera, keywords in cameras.items():
        click.echo("\n".join(format_status(camera, keywords)))
    if defaults and defaults[-1]:
        click.echo(f"default cameras: {', '.join(defaults[-1])}")
