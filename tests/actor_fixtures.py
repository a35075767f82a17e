"""Fixtures that run a real camera actor on the local RabbitMQ broker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from clu import AMQPClient

from actor.actor import CameraActor
from camera_core import CameraEvent, EventListener

BROKER = {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest"}


def actor_config(tmp_path: Path, **simulator: Any) -> dict[str, Any]:
    """A configuration with two small simulated cameras writing to tmp_path."""
    sim = {
        "width": 64,
        "height": 48,
        "time_factor": 1.0,
        "readout_time": 0.05,
        "flush_time": 0.01,
        "fast_noise": True,
        "cooling_rate": 20.0,
        **simulator,
    }
    return {
        "actor": {
            "name": f"camtest_{uuid.uuid4().hex[:8]}",
            **BROKER,
            "data_dir": str(tmp_path / "data"),
            "spool_dir": str(tmp_path / "spool"),
            "image_name": "{camera.name}-{num:04d}.fits",
            "image_dir": "{camera.name}",
            "default_cameras": [],
            "validate": True,
            "max_command_bytes": 65536,
            "poll_interval": 0.2,
        },
        "simulator": sim,
        "cameras": {
            "sim1": {
                "uid": "SIM-1",
                "spool_dir": str(tmp_path / "spool"),
                "exposure_timeout_margin": 5.0,
                "temperature_poll_interval": 0.05,
                "simulator": {"seed": 1},
            },
            "sim2": {
                "uid": "SIM-2",
                "spool_dir": str(tmp_path / "spool"),
                "exposure_timeout_margin": 5.0,
                "temperature_poll_interval": 0.05,
                "simulator": {"seed": 2},
            },
        },
    }


async def start_actor(config: dict[str, Any]) -> CameraActor:
    """Starts an actor and waits until its configured cameras are connected."""
    actor = CameraActor.from_config(config)
    listener = EventListener()
    actor.camera_system.notifier.register_listener(listener)
    await actor.start()
    names = set(config["cameras"])
    try:
        async with asyncio.timeout(10):
            while {c.name for c in actor.camera_system.cameras if c.connected} != names:
                await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=0.5)
    finally:
        actor.camera_system.notifier.remove_listener(listener)
        await listener.stop_listening()
    return actor


@pytest.fixture
async def actor(tmp_path):
    actor = await start_actor(actor_config(tmp_path))
    yield actor
    await actor.stop()


@pytest.fixture
async def client():
    client = AMQPClient(**BROKER)
    await client.start()
    yield client
    await client.stop()


async def send(
    client: AMQPClient, actor: CameraActor, command: str, time_limit: float = 20.0
):
    """Sends a command and waits for its terminal reply (bounded)."""
    return await client.send_command(actor.name, command, time_limit=time_limit)


def keywords(command, name: str) -> list[Any]:
    """Every value of keyword ``name`` in a command's replies, in order."""
    return [reply.message[name] for reply in command.replies if name in reply.message]
