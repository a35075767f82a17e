"""Shared fixtures: a connected test camera and an event recorder."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeLib, IntegratingCamera, TestSystem

from camera_core import CameraEvent, EventListener

#: The real-broker actor fixtures (actor, client) are shared by every test file.
pytest_plugins = [
    "actor_fixtures",
    "alpaca_fixtures",
    "broker_processes",
    "indi_fixtures",
]


@pytest.fixture
def lib() -> FakeLib:
    return FakeLib()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def camera(lib: FakeLib, tmp_path: Path, spool: Path):
    """A connected IntegratingCamera writing into tmp_path/data."""
    config = {
        "cameras": {
            "cam1": {
                "uid": "S12345",
                "spool_dir": str(spool),
                "write_backoff": 0.01,
                "temperature_poll_interval": 0.01,
                "exposure_timeout_margin": 2.0,
                "image_namer": {
                    "basename": "{camera.name}-{num:04d}.fits",
                    "dirname": str(tmp_path / "data"),
                },
            }
        }
    }
    system = TestSystem(IntegratingCamera, camera_config=config, lib=lib)
    cam = await system.add_camera(name="cam1")
    yield cam
    await system.disconnect()


@pytest.fixture
async def events(camera):
    """Every event the camera system emits, in order, as (event, payload)."""
    seen: list[tuple[CameraEvent, dict]] = []

    class Recorder(EventListener):
        def put_event(self, event, payload):  # record synchronously, in order
            seen.append((event, payload))

    listener = Recorder(autostart=False)
    camera.camera_system.notifier.register_listener(listener)
    yield seen
    camera.camera_system.notifier.remove_listener(listener)
