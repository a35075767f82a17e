"""Disk faults through the real actor, injected for real.

The data directory (and the spool) of camera sim1 are small tmpfs mounts
(`disk_helpers.Tmpfs`) that are remounted read-only or filled up in the middle
of an ``expose --count`` sequence. Every frame must end at its target, byte
for byte what a clean write gives, once ``recover`` has run.
"""

from __future__ import annotations

import asyncio
import errno
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from actor_fixtures import BROKER, actor_config, keywords, send, start_actor
from actor_test_helpers import ReplyLog, camera, codes, errors, fails, ok, wait_for
from clu import AMQPClient
from disk_helpers import assert_as_written, tmpfs, verified

import camera_core.exposure as exposure_module


@pytest.fixture
def written(monkeypatch):
    """Every HDU list an exposure hands to the writer: id -> (target, hdulist)."""
    seen: dict[str, tuple[Path, object]] = {}
    original = exposure_module.write_hdulist

    async def spy(hdulist, target, *args, metadata=None, **kwargs):
        seen[metadata["exposure_id"]] = (Path(target), hdulist)
        return await original(hdulist, target, *args, metadata=metadata, **kwargs)

    monkeypatch.setattr(exposure_module, "write_hdulist", spy)
    return seen


@pytest.fixture
async def rig(tmp_path):
    """A running actor whose sim1 writes to tmpfs data and spool directories."""
    config = actor_config(tmp_path)
    for name in ("sim1", "sim2"):
        config["cameras"][name].update(write_retries=2, write_backoff=0.01)
    log = ReplyLog(config["actor"]["name"])
    client = AMQPClient(**BROKER)
    await client.start()
    client.add_reply_callback(log)
    with (
        tmpfs(tmp_path / "data" / "sim1", "4m") as data,
        tmpfs(tmp_path / "spool", "4m") as spool,
    ):
        actor = await start_actor(config)
        actor.write_queue = 1  # one write at a time: faults hit the frame meant
        try:
            yield SimpleNamespace(
                actor=actor, client=client, log=log, data=data, spool=spool
            )
        finally:
            await actor.stop()
            await client.stop()


def on_frame(number: int, action) -> object:
    """A write fault hook that runs ``action`` before frame ``number``'s write."""
    fired = threading.Event()

    def hook(path: Path, is_spool: bool) -> None:
        if not is_spool and path.name == f"sim1-{number:04d}.fits":
            if not fired.is_set():
                fired.set()
                action()

    return hook


def assert_all_recovered(written, tmp_path: Path, count: int) -> None:
    """Every frame is at its target once, as a clean write would have made it."""
    assert len(written) == count
    targets = sorted(target for target, _ in written.values())
    assert len(set(targets)) == count
    on_disk = sorted((tmp_path / "data" / "sim1").glob("*.fits"))
    assert on_disk == targets
    for target, hdulist in written.values():
        assert_as_written(target, hdulist, tmp_path)
        with verified(target) as hdul:
            assert hdul[0].header["CAMNAME"] == "sim1"
    assert list((tmp_path / "spool").iterdir()) == []
    assert not list((tmp_path / "data" / "sim1").glob(".*.part"))


async def test_data_dir_turns_readonly_mid_sequence(rig, written, tmp_path):
    actor, client, log, data = rig.actor, rig.client, rig.log, rig.data
    sim1 = camera(actor, "sim1")
    sim1.write_fault = on_frame(3, data.readonly)
    command = await ok(client, actor, "expose sim1 0.05 -c 5")
    files = keywords(command, "filename")
    assert [f["spooled"] for f in files] == [False, False, True, True, True]
    assert codes(command).count("w") >= 3
    # The user is told where each frame went, and why.
    told = [e["error"] for _, e in log.values("error") if isinstance(e, dict)]
    assert len(told) == 3, told
    assert all("Read-only" in e and "send 'recover'" in e for e in told), told
    sidecars = {}
    for path in (tmp_path / "spool").glob("*.json"):
        sidecar = json.loads(path.read_text())
        sidecars[sidecar["exposure_id"]] = sidecar
        assert (tmp_path / "spool" / sidecar["spool_file"]).is_file()
        assert "Read-only file system" in sidecar["error"]
    assert sorted(sidecars) == sorted(f["exposure_id"] for f in files[2:])
    for info in files[2:]:
        assert sidecars[info["exposure_id"]]["target"] == info["filename"]
    assert len(list((tmp_path / "data" / "sim1").glob("*.fits"))) == 2

    # Still read-only: recover fails loudly and keeps every frame.
    command = await fails(client, actor, "recover", match="not recovered")
    assert [r["recovered"] for r in keywords(command, "recovered")] == [False] * 3
    assert len(list((tmp_path / "spool").glob("*.json"))) == 3

    await asyncio.to_thread(data.readonly, False)
    command = await ok(client, actor, "recover")
    recovered = keywords(command, "recovered")
    assert sorted(r["exposure_id"] for r in recovered) == sorted(
        f["exposure_id"] for f in files[2:]
    )
    assert all(r["recovered"] and r["source"] == "spool" for r in recovered)
    assert_all_recovered(written, tmp_path, 5)
    for exposure_id, sidecar in sidecars.items():  # the original header, in full
        with verified(Path(sidecar["target"])) as hdul:
            cards = [[c.keyword, c.value, c.comment] for c in hdul[0].header.cards]
        skip = {"CHECKSUM", "DATASUM"}
        assert [c for c in cards if c[0] not in skip] == [
            c for c in sidecar["header"] if c[0] not in skip
        ], exposure_id
    command = await ok(client, actor, "recover")
    assert "Nothing to recover" in command.replies[-1].message["text"]


async def test_enospc_on_a_tiny_filesystem_mid_sequence(rig, written, tmp_path):
    actor, client, data = rig.actor, rig.client, rig.data
    # A 64 kB filesystem holds a few 12 kB frames, then is really full.
    await asyncio.to_thread(data.resize, "64k")
    command = await ok(client, actor, "expose sim1 0.05 -c 8")
    flags = [f["spooled"] for f in keywords(command, "filename")]
    assert flags[0] is False and flags[-1] is True, flags
    assert flags == sorted(flags)  # once full, every later frame is spooled
    for sidecar in (tmp_path / "spool").glob("*.json"):
        assert "No space left on device" in json.loads(sidecar.read_text())["error"]
    assert sum(flags) == len(list((tmp_path / "spool").glob("*.fits")))

    await asyncio.to_thread(data.resize, "4m")  # the operator frees space
    command = await ok(client, actor, "recover")
    assert len(keywords(command, "recovered")) == sum(flags)
    assert_all_recovered(written, tmp_path, 8)


async def test_spool_also_unwritable_keeps_the_frame_in_memory(rig, written, tmp_path):
    actor, client, log = rig.actor, rig.client, rig.log
    data, spool = rig.data, rig.spool
    sim1 = camera(actor, "sim1")
    await asyncio.to_thread(data.readonly)
    await asyncio.to_thread(spool.readonly)
    command = await send(client, actor, "expose sim1 0.05")
    assert codes(command)[-1] == "f"
    message = errors(command)
    assert "NOT WRITTEN" in message and "held in memory" in message, message
    assert "recover" in message and "Read-only file system" in message
    await wait_for(lambda: bool(log.values("unsaved_frame")))
    ((_, unsaved),) = log.values("unsaved_frame")
    assert [code for _, code, body in log.replies if "unsaved_frame" in body] == ["!"]
    assert unsaved["camera"] == "sim1" and unsaved["in_memory"] == 1
    (exposure,) = sim1.unsaved_exposures
    assert unsaved["exposure_id"] == exposure.exposure_id
    assert unsaved["filename"] == exposure.filename
    assert not list((tmp_path / "data" / "sim1").iterdir())
    assert not list((tmp_path / "spool").iterdir())

    # Nothing writable yet: recover says so and keeps the frame in memory.
    command = await fails(client, actor, "recover", match="not recovered")
    (result,) = keywords(command, "recovered")
    assert result["source"] == "memory" and result["recovered"] is False
    assert sim1.unsaved_exposures == [exposure]

    # The spool comes back first: the frame moves there, still not at home.
    await asyncio.to_thread(spool.readonly, False)
    command = await fails(client, actor, "recover", match="not recovered")
    (result,) = keywords(command, "recovered")
    assert result["path"] is not None and "still not writable" in result["error"]
    assert sim1.unsaved_exposures == []
    assert len(list((tmp_path / "spool").glob("*.json"))) == 1

    await asyncio.to_thread(data.readonly, False)
    command = await ok(client, actor, "recover")
    (result,) = keywords(command, "recovered")
    assert result["recovered"] and result["exposure_id"] == exposure.exposure_id
    assert_all_recovered(written, tmp_path, 1)


async def test_memory_frame_goes_straight_home_when_the_disk_is_back(
    rig, written, tmp_path
):
    actor, client, data, spool = rig.actor, rig.client, rig.data, rig.spool
    sim1 = camera(actor, "sim1")
    sim1.write_fault = on_frame(2, lambda: (data.readonly(), spool.readonly()))
    command = await send(client, actor, "expose sim1 0.05 -c 4")
    assert codes(command)[-1] == "f" and "held in memory" in errors(command)
    assert len(sim1.unsaved_exposures) == 1  # the sequence stopped loudly
    await asyncio.to_thread(data.readonly, False)
    await asyncio.to_thread(spool.readonly, False)
    command = await ok(client, actor, "recover")
    (result,) = keywords(command, "recovered")
    assert result["source"] == "memory" and result["path"] is None
    assert result["recovered"] is True
    assert_all_recovered(written, tmp_path, 2)


#: The soak: 20 faults of five kinds on 20 of 31 frames (see `soak_hook`).
SOAK_KINDS = ["ro", "transient", "full", "enospc", "spool"] * 4
SOAK_FRAMES = [n for n in range(2, 32) if n % 3 != 1]
SOAK_SCHEDULE = dict(zip(SOAK_FRAMES, SOAK_KINDS, strict=True))


def soak_hook(data, spool, attempts: dict[int, int]):
    """Injects the fault scheduled for each frame, for real where it can be.

    ``ro``: the data tmpfs is remounted read-only until the frame is spooled;
    ``full``: the data tmpfs is filled up (ENOSPC) until then; ``spool``: data
    and spool are both read-only (the frame stays in memory); ``enospc``: an
    injected OSError(ENOSPC) at every write call of the frame; ``transient``:
    an injected EIO on its first one or two attempts, then success.
    """

    def hook(path: Path, is_spool: bool) -> None:
        number = int(path.name.rsplit("-", 1)[-1].split(".")[0])
        kind = SOAK_SCHEDULE.get(number)
        if kind is None:
            return
        attempts[number] = count = attempts.get(number, 0) + 1
        if is_spool:
            if kind == "ro":
                data.readonly(False)
            elif kind == "full":
                data.free_pages()
            return
        if count == 1 and kind in ("ro", "spool"):
            data.readonly()
        if count == 1 and kind == "spool":
            spool.readonly()
        if count == 1 and kind == "full":
            data.fill()
        if kind == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        if kind == "transient" and count <= 1 + number % 2:
            raise OSError(errno.EIO, "Input/output error (injected)")

    return hook


async def test_soak_twenty_mixed_faults_lose_no_frame(rig, written, tmp_path):
    actor, client, log = rig.actor, rig.client, rig.log
    sim1 = camera(actor, "sim1")
    attempts: dict[int, int] = {}
    sim1.write_fault = soak_hook(rig.data, rig.spool, attempts)
    total, commands = 31, 0
    reported: dict[str, dict] = {}
    while len(written) < total:
        commands += 1
        command = await send(
            client, actor, f"expose sim1 0.02 -c {total - len(written)}", 60
        )
        reported.update({f["exposure_id"]: f for f in keywords(command, "filename")})
        if codes(command)[-1] == "f":  # a frame is held in memory: disk back
            assert "held in memory" in errors(command), errors(command)
            await asyncio.to_thread(rig.data.readonly, False)
            await asyncio.to_thread(rig.spool.readonly, False)
        else:
            assert codes(command)[-1] == ":", errors(command)
    assert commands == 1 + SOAK_KINDS.count("spool")
    assert sorted(attempts) == SOAK_FRAMES  # every scheduled fault fired

    unsaved = {u["exposure_id"] for _, u in log.values("unsaved_frame")}
    assert len(unsaved) == SOAK_KINDS.count("spool") == len(sim1.unsaved_exposures)
    assert set(reported) | unsaved == set(written)  # every frame was reported
    by_number = {
        int(Path(target).stem.split("-")[-1]): exposure_id
        for exposure_id, (target, _) in written.items()
    }
    for number, kind in SOAK_SCHEDULE.items():
        exposure_id = by_number[number]
        if kind == "spool":
            assert exposure_id in unsaved
        elif kind == "transient":
            assert reported[exposure_id]["spooled"] is False
            assert attempts[number] == 2 + number % 2  # failed, then succeeded
        else:
            assert reported[exposure_id]["spooled"] is True, (number, kind)
    spooled = sum(f["spooled"] for f in reported.values())
    assert spooled == 12

    command = await ok(client, actor, "recover")
    results = keywords(command, "recovered")
    assert len(results) == spooled + len(unsaved)
    assert all(result["recovered"] for result in results)
    assert sim1.unsaved_exposures == []
    assert_all_recovered(written, tmp_path, total)  # 0 lost, each once, valid
