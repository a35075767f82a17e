"""``camactor expose``: a one-shot exposure with a progress display.

Two modes:

- directly on the library (default): the configured cameras are connected in
  this process, no broker or running actor needed (do not use it while an actor
  drives the same cameras);
- through a running actor (``--via-actor``): the ``expose`` command is sent
  over the broker and the display follows the actor's ``exposure_state``
  keywords.

Both print each written file and exit 1 with the error if the exposure fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections.abc import Coroutine
from typing import Any

import click

from camera_core import BaseCamera, CameraEvent, EventListener

from .cli_client import ActorClientError, actor_client, command_error
from .cli_progress import ProgressView
from .daemon import CliState, preflight

__all__ = ["expose_command"]

#: Seconds between progress updates in direct mode (as the actor's keywords).
TICK = 0.5


class ExposeError(Exception):
    """The exposure could not be taken; the message says why."""


def _file_line(value: dict[str, Any]) -> str:
    if value.get("spooled"):
        return (
            f"{value['camera']}: SPOOLED to {value['path']} (target "
            f"{value['filename']} unwritable; run 'camactor recover')"
        )
    return f"{value['camera']}: wrote {value['path']}"


def select_cameras(config: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """The camera names to expose: the given ones, the defaults, or all."""
    configured = list(config.get("cameras") or {})
    chosen = list(names) or list(config["actor"].get("default_cameras") or [])
    chosen = chosen or configured
    unknown = [name for name in chosen if name not in configured]
    if unknown:
        raise ExposeError(
            f"unknown camera {', '.join(unknown)}; the config has "
            f"{', '.join(configured) or 'no cameras'}."
        )
    return chosen


async def _connected(system: Any, names: list[str], timeout: float) -> list[Any]:
    listener = EventListener()
    system.notifier.register_listener(listener)
    try:
        await system.start_camera_poller(interval=1.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # get_camera gives False for a camera it does not have (basecam).
            cameras = [system.get_camera(name=name) or None for name in names]
            if all(camera is not None and camera.connected for camera in cameras):
                return cameras
            left = deadline - loop.time()
            if left <= 0:
                missing = [
                    name
                    for name, camera in zip(names, cameras, strict=True)
                    if camera is None or not camera.connected
                ]
                raise ExposeError(
                    f"camera {', '.join(missing)} did not connect in {timeout:g} s; "
                    "check it with 'camactor cameras'."
                )
            await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=min(left, 1))
    finally:
        system.notifier.remove_listener(listener)
        await listener.stop_listening()


async def expose_direct(
    config: dict[str, Any],
    names: list[str],
    exposure: dict[str, Any],
    view: ProgressView,
    connect_timeout: float = 10.0,
) -> list[str]:
    """Exposes cameras in this process; returns the written paths."""
    from .actor import build_camera_system

    system = build_camera_system(config)
    count = exposure["count"]
    done: dict[str, int] = dict.fromkeys(names, 0)

    def show(camera: BaseCamera) -> None:
        state = camera.progress.to_dict()
        state.update(count_n=done[camera.name], count_total=count)
        view.update(state)

    paths: list[str] = []
    try:
        cameras = await _connected(system, names, connect_timeout)
        by_name = {camera.name: camera for camera in cameras}

        def on_event(event: CameraEvent, payload: dict[str, Any]) -> None:
            camera = by_name.get(payload.get("camera"))
            if camera is not None:
                show(camera)

        listener = EventListener()
        listener.register_callback(on_event)
        system.notifier.register_listener(listener)

        async def tick() -> None:
            while True:
                for camera in cameras:
                    if camera.progress.active:
                        show(camera)
                await asyncio.sleep(TICK)  # a display refresh, not a wait

        async def sequence(camera: BaseCamera) -> None:
            for _ in range(count):
                done[camera.name] += 1
                taken = await camera.expose(
                    exposure["exptime"],
                    image_type=exposure["image_type"],
                    stack=exposure["stack"],
                    write=True,
                )
                result = taken.write_result
                value = {
                    "camera": camera.name,
                    "path": str(result.path),
                    "filename": str(result.target),
                    "spooled": result.spooled,
                }
                paths.append(value["path"])
                view.message(_file_line(value))

        ticker = asyncio.create_task(tick())
        try:
            outcomes = await asyncio.gather(
                *(sequence(camera) for camera in cameras), return_exceptions=True
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            system.notifier.remove_listener(listener)
            await listener.stop_listening()
        errors = [
            f"{camera.name}: {outcome}"
            for camera, outcome in zip(cameras, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        if errors:
            raise ExposeError("; ".join(errors))
    finally:
        await system.disconnect()
    return paths


async def expose_via_actor(
    config: dict[str, Any],
    names: list[str],
    exposure: dict[str, Any],
    view: ProgressView,
    timeout: float,
) -> list[str]:
    """Sends ``expose`` to the running actor; returns the written paths."""
    actor = config["actor"]["name"]
    options = f"--{exposure['image_type']} --count {exposure['count']}"
    options += f" --stack {exposure['stack']}"
    text = " ".join([*names, repr(exposure["exptime"]), options]).strip()
    paths: list[str] = []

    def on_reply(reply: Any) -> None:  # every reply on the bus (an AMQPReply)
        if reply.sender != actor:
            return
        state = reply.body.get("exposure_state")
        if isinstance(state, dict) and (not names or state.get("camera") in names):
            view.update(state)

    def on_command_reply(reply: Any) -> None:
        value = reply.body.get("filename")
        if isinstance(value, dict):
            paths.append(str(value["path"]))
            view.message(_file_line(value))

    try:
        async with actor_client(config) as client:
            client.add_reply_callback(on_reply)
            command = await client.send_command(
                actor, f"expose {text}", reply_callback=on_command_reply,
                time_limit=timeout,
            )  # fmt: skip
    except ActorClientError as err:
        raise ExposeError(str(err)) from None
    if not command.status.did_succeed:
        raise ExposeError(command_error(command, timeout))
    return paths


@click.command("expose")
@click.argument("exptime", type=click.FloatRange(min=0))
@click.option("--camera", "cameras", multiple=True, help="Camera (repeatable).")
@click.option("--object", "image_type", flag_value="object", default=True)
@click.option("--flat", "image_type", flag_value="flat")
@click.option("--dark", "image_type", flag_value="dark")
@click.option("--bias", "image_type", flag_value="bias")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--stack", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--via-actor", is_flag=True, help="Send it to the running actor.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to wait for the end (default: from EXPTIME, COUNT, STACK).",
)
@click.pass_obj
def expose_command(
    state: CliState,
    exptime: float,
    cameras: tuple[str, ...],
    image_type: str,
    count: int,
    stack: int,
    via_actor: bool,
    timeout: float | None,
) -> None:
    """Take COUNT exposures of EXPTIME seconds and print the written files."""
    if not math.isfinite(exptime):
        raise click.BadParameter("must be a finite number of seconds.")
    exposure = {
        "exptime": exptime,
        "image_type": image_type,
        "count": count,
        "stack": stack,
    }
    if timeout is None:
        timeout = count * stack * (exptime * 1.5 + 10) + 30
    view = ProgressView(sys.stdout)
    run: Coroutine[Any, Any, list[str]]
    try:
        if via_actor:
            run = expose_via_actor(state.config, list(cameras), exposure, view, timeout)
        else:
            preflight(state.config)
            names = select_cameras(state.config, cameras)
            run = expose_direct(state.config, names, exposure, view)
        try:
            paths = asyncio.run(asyncio.wait_for(run, timeout))
        except TimeoutError:
            raise ExposeError(f"the exposures did not end in {timeout:g} s.") from None
        finally:
            view.close()
    except ExposeError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{len(paths)} file(s) written.")
