"""A foreground demo: simulated cameras exposing through camera_core."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from camera_core import CameraEvent, EventListener


async def run_demo(
    config: dict[str, Any],
    exptime: float,
    count: int | None,
    data_dir: Path | None,
    echo: Callable[[str], None],
) -> None:
    """Connects the configured cameras and exposes them in a loop.

    The cameras are built as the actor builds them (`build_camera_system`), so
    images go where the actor would write them unless ``data_dir`` is given.
    Each camera runs its own sequence concurrently; every written file and every
    failure is printed.
    """
    from .actor import build_camera_system

    system = build_camera_system(config)
    listener = EventListener()
    system.notifier.register_listener(listener)

    def report(event: CameraEvent, payload: dict) -> None:
        if event in (CameraEvent.EXPOSURE_WRITTEN, CameraEvent.EXPOSURE_SPOOLED):
            echo(f"{payload['camera']}: {event.value} {payload.get('path')}")
        elif event is CameraEvent.CAMERA_CONNECTED:
            echo(f"{payload['camera']}: connected")

    listener.register_callback(report)
    await system.start_camera_poller(interval=1.0)
    try:
        for _ in range(50):
            if system.cameras and all(c.connected for c in system.cameras):
                break
            await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=0.2)
        if not system.cameras:
            echo("No cameras found in the configuration.")
            return

        async def sequence(camera) -> None:
            numbers = range(count) if count is not None else itertools.count()
            for _ in numbers:
                filename = None
                if data_dir is not None:
                    filename = data_dir / camera.image_namer(camera).name
                try:
                    await camera.expose(exptime, filename=filename, write=True)
                except Exception as err:  # keep the other cameras going
                    echo(f"{camera.name}: exposure failed: {err}")
                    await asyncio.sleep(1.0)

        await asyncio.gather(*(sequence(camera) for camera in system.cameras))
    finally:
        await system.disconnect()
        await listener.stop_listening()
