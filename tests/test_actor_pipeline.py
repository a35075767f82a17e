"""expose --count writes in the background, with a bounded queue per camera."""

from __future__ import annotations

import time
from pathlib import Path

from actor_fixtures import keywords, send
from fakes import open_verified


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
