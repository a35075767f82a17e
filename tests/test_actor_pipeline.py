"""expose --count writes in the background, with a bounded queue per camera."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from actor_fixtures import keywords, send
from actor_test_helpers import wait_for
from fakes import open_verified

from camera_core import CameraEvent


def slow_disk(seconds: float):
    def hook(path: Path, is_spool: bool) -> None:
        time.sleep(seconds)  # runs in the writer's worker thread

    return hook


async def test_slow_disk_makes_exposures_wait(actor, client):
    actor.write_queue = 1
    sim1 = actor.camera_system.get_camera(name="sim1")
    sim1.write_fault = slow_disk(0.4)
    command = await send(client, actor, "expose sim1 0 --count 3", time_limit=30)
    assert command.status.did_succeed, command.replies[-1].message
    texts = [t for t in keywords(command, "text") if "waiting for the disk" in t]
    assert texts and "sim1" in texts[0]
    files = keywords(command, "filename")
    assert len(files) == 3
    for entry in files:
        with open_verified(entry["path"]) as hdul:
            assert hdul[0].header["CAMNAME"] == "sim1"


async def test_writes_overlap_the_next_exposure(actor, client):
    sim1 = actor.camera_system.get_camera(name="sim1")
    sim1.write_fault = slow_disk(0.5)
    start = time.perf_counter()
    command = await send(client, actor, "expose sim1 0.5 --count 3", time_limit=30)
    elapsed = time.perf_counter() - start
    assert command.status.did_succeed, command.replies[-1].message
    assert len(keywords(command, "filename")) == 3
    # Serial exposure + write takes at least 3 x (0.5 + 0.5) = 3 s; overlapped
    # about 3 x 0.5 + 0.5 = 2 s.
    assert elapsed < 2.7
    assert not any("waiting for the disk" in t for t in keywords(command, "text"))


async def test_exposure_state_is_the_cameras_own_and_not_repeated(actor, client):
    """One broadcast per phase change; a background write is not the state."""
    sim1 = actor.camera_system.get_camera(name="sim1")
    states: list[dict] = []

    def record(reply) -> None:
        state = reply.body.get("exposure_state")
        if reply.sender == actor.name and state and state["camera"] == "sim1":
            states.append(state)

    client.add_reply_callback(record)
    running = asyncio.create_task(send(client, actor, "expose sim1 1", time_limit=20))
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    # A frame taken earlier starts being written while this one integrates.
    sim1._notify(
        CameraEvent.EXPOSURE_WRITING, {"exposure_id": "older", "filename": "x"}
    )
    command = await running
    assert command.status.did_succeed, command.replies[-1].message
    await wait_for(lambda: any(s["phase"] == "done" for s in states))
    assert not [s for s in states if s["exposure_id"] == "older"]
    phases = [s["phase"] for s in states]
    assert phases.count("done") == 1 and phases.count("flushing") == 1, phases
    assert phases.count("reading") == 1, phases
