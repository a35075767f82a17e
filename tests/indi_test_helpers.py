"""Helpers for the INDI backend tests (a real indi_simulator_ccd)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from indi_fixtures import DEVICE, IndiServer

from camera_core.backends.indi import INDICameraSystem


def make_system(
    server: IndiServer, tmp_path: Path, timeout: float = 5, **camera
) -> INDICameraSystem:
    entry = {
        "uid": DEVICE,
        "spool_dir": str(tmp_path / "spool"),
        "exposure_timeout_margin": 10.0,
        "temperature_poll_interval": 0.1,
        "image_namer": {"dirname": str(tmp_path / "data")},
        **camera,
    }
    config = {
        "indi": {"host": server.host, "port": server.port, "timeout": timeout},
        "cameras": {"ccd": entry},
    }
    return INDICameraSystem(camera_config=config)


async def until(predicate, timeout: float, step: float = 0.02) -> float:
    """Polls ``predicate`` until true; returns the seconds it took."""
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)
    return time.monotonic() - start
