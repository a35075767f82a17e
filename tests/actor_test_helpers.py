"""Helpers for the actor command tests (real actor, real RabbitMQ)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actor_fixtures import send
from astropy.io import fits

from actor.actor import CameraActor
from camera_core.simulator import SimulatedCamera


def camera(actor: CameraActor, name: str) -> SimulatedCamera:
    """The simulated camera ``name`` of an actor."""
    found = actor.camera_system.get_camera(name=name)
    assert found, f"camera {name} is not in the system"
    return found


def data_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / "data" / name


def fits_files(tmp_path: Path, name: str) -> list[Path]:
    """The FITS files written for camera ``name``, sorted."""
    return sorted(data_dir(tmp_path, name).glob("*.fits*"))


def image(path: Path | str) -> tuple[fits.Header, tuple[int, ...]]:
    """The header and data shape of the (first) image HDU of a file."""
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.data is not None:
                return hdu.header.copy(), tuple(hdu.data.shape)
    raise AssertionError(f"{path} has no image data")


def codes(command) -> list[str]:
    """The reply codes of a client command, in order."""
    return [reply.message_code.value for reply in command.replies]


def last(command) -> dict[str, Any]:
    return command.replies[-1].message


def errors(command) -> str:
    """Every error of a command's replies, as one string (for assertions)."""
    found = []
    for reply in command.replies:
        error = reply.message.get("error")
        if isinstance(error, dict):
            found.append(f"{error.get('camera')}: {error.get('error')}")
        elif error is not None:
            found.append(str(error))
    return " | ".join(found)


def succeeded(command) -> bool:
    return command.status.did_succeed and codes(command)[-1] == ":"


def failed(command) -> bool:
    return command.status.did_fail and codes(command)[-1] == "f"


async def ok(client, actor, text: str, time_limit: float = 10.0):
    """Sends a command and asserts it finished with ``:``."""
    command = await send(client, actor, text, time_limit=time_limit)
    assert succeeded(command), (text, codes(command), errors(command))
    return command


async def fails(client, actor, text: str, time_limit: float = 10.0, match: str = ""):
    """Sends a command and asserts it failed with ``f`` and an error."""
    command = await send(client, actor, text, time_limit=time_limit)
    assert failed(command), (text, codes(command), errors(command))
    assert "error" in last(command), last(command)
    assert match.lower() in errors(command).lower(), (match, errors(command))
    return command


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Polls ``predicate`` until true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


class ReplyLog:
    """Every reply an actor sends on the bus, with its arrival time."""

    def __init__(self, sender: str) -> None:
        self.sender = sender
        self.replies: list[tuple[float, str, dict[str, Any]]] = []

    def __call__(self, reply) -> None:
        if reply.sender == self.sender:
            code = reply.message_code
            code = getattr(code, "value", code)
            self.replies.append((time.monotonic(), str(code), dict(reply.body)))

    def values(self, keyword: str) -> list[tuple[float, Any]]:
        return [(t, body[keyword]) for t, _, body in self.replies if keyword in body]
