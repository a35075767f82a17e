"""No path of the writer or of ``recover`` loses or replaces a frame.

Name reuse after a restart, exceptions that are not `OSError`, a spool locked
by another process and the journal after a recovery, through the real actor.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

import numpy as np
import pytest
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import camera, fails, ok
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from disk_helpers import verified

from camera_core import Exposure, ExposureWriteError
from camera_core.spool import LOCK_TIMEOUT
from camera_core.writer import write_hdulist


def refuse_target(path: Path, is_spool: bool) -> None:
    if not is_spool:
        raise OSError(errno.EROFS, "Read-only file system (injected)", str(path))


async def test_recover_never_replaces_a_reused_name(client, actor, tmp_path):
    first = await ok(client, actor, "expose sim1 0.05 --dark -f a.fits")
    (written,) = keywords(first, "filename")
    before = Path(written["path"]).read_bytes()
    # The same name again: the second frame goes to the spool, not over a.fits.
    second = await send(client, actor, "expose sim1 0.05 --flat -f a.fits")
    assert "already exists" in second.replies[-1].message["error"]
    assert "recover" in second.replies[-1].message["error"]
    assert len(list((tmp_path / "spool").glob("*-a.fits"))) == 1

    command = await ok(client, actor, "recover")
    (result,) = keywords(command, "recovered")
    beside = Path(written["path"]).with_name("a-recovered-1.fits")
    assert result["recovered"] and result["written_to"] == str(beside)
    assert str(beside) in result["error"]
    assert Path(written["path"]).read_bytes() == before  # the first frame is kept
    with verified(beside) as hdul:
        assert hdul[0].header["IMAGETYP"] == "flat"
    assert list((tmp_path / "spool").iterdir()) == []
    await fails(client, actor, "recover --overwrite", match="overwrite")


async def test_namer_skips_the_name_of_a_spooled_frame(client, tmp_path):
    config = actor_config(tmp_path)
    config["cameras"]["sim1"].update(write_retries=0)
    actor = await start_actor(config)
    try:
        camera(actor, "sim1").write_fault = refuse_target
        await send(client, actor, "expose sim1 0.05 --dark")
        assert len(list((tmp_path / "spool").glob("*-sim1-0001.fits"))) == 1
    finally:
        await actor.stop()
    actor = await start_actor(config)  # a restart forgets the sequence number
    try:
        command = await ok(client, actor, "expose sim1 0.05 --flat")
        (written,) = keywords(command, "filename")
        target = tmp_path / "data" / "sim1" / "sim1-0001.fits"
        assert written["path"] == str(target.with_name("sim1-0002.fits"))
        command = await ok(client, actor, "recover")
        (result,) = keywords(command, "recovered")
        assert result["written_to"] == str(target) and result["error"] is None
        assert fits.getval(target, "IMAGETYP") == "dark"
        assert fits.getval(written["path"], "IMAGETYP") == "flat"
    finally:
        await actor.stop()


def unverifiable() -> fits.HDUList:
    """A frame whose header astropy refuses only when it writes it."""
    hdu = fits.PrimaryHDU(np.arange(64, dtype=np.uint16).reshape(8, 8))
    hdu.header["EXTEND"] = "maybe"
    return fits.HDUList([hdu])


async def test_a_header_that_fails_verification_is_not_retried_and_not_lost(
    tmp_path,
):
    calls: list[tuple[str, bool]] = []
    spool = tmp_path / "spool"
    with pytest.raises(OSError, match="nor spool it") as raised:
        await write_hdulist(
            unverifiable(),
            tmp_path / "x.fits",
            retries=3,
            backoff=0.01,
            spool_dir=spool,
            fault_hook=lambda path, is_spool: calls.append((path.name, is_spool)),
        )
    assert isinstance(raised.value.__cause__, VerifyError)
    assert "VerifyError" in str(raised.value)
    assert [is_spool for _, is_spool in calls] == [False, True]  # no retries
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


async def test_any_exception_keeps_the_frame_in_memory(camera, tmp_path):
    frame = np.arange(96, dtype=np.uint16).reshape(8, 12)
    exposure = Exposure(camera, data=frame)
    exposure.image_type, exposure.exptime, exposure.exptime_n = "object", 1.0, 1.0

    def refuse(path: Path, is_spool: bool) -> None:
        raise VerifyError("header card EXTEND is not a boolean (injected)")

    camera.write_fault = refuse
    with pytest.raises(ExposureWriteError, match=r"kept in memory.*VerifyError"):
        await exposure.write(tmp_path / "x.fits")
    assert camera.unsaved_exposures == [exposure]
    camera.write_fault = None
    await exposure.write()
    assert camera.unsaved_exposures == []
    with fits.open(tmp_path / "x.fits") as hdul:
        assert np.array_equal(hdul[0].data, frame)


async def test_memory_error_is_retried_then_spooled_else_held(client, tmp_path):
    config = actor_config(tmp_path)
    config["cameras"]["sim1"].update(write_retries=2, write_backoff=0.01)
    actor = await start_actor(config)
    sim1 = camera(actor, "sim1")
    seen: list[bool] = []

    def no_memory_for_the_target(path: Path, is_spool: bool) -> None:
        seen.append(is_spool)
        if not is_spool:
            raise MemoryError("cannot allocate the compression buffer (injected)")

    def no_memory_at_all(path: Path, is_spool: bool) -> None:
        raise MemoryError("cannot allocate the compression buffer (injected)")

    try:
        sim1.write_fault = no_memory_for_the_target
        await send(client, actor, "expose sim1 0.05 --exposure-id M1")
        assert seen == [False, False, False, True]  # retried, then spooled
        assert len(list((tmp_path / "spool").glob("*-sim1-0001.fits"))) == 1

        sim1.write_fault = no_memory_at_all
        command = await fails(client, actor, "expose sim1 0.05", match="NOT WRITTEN")
        assert "MemoryError" in command.replies[-1].message["error"]
        (held,) = actor.camera_system.unsaved_exposures
        assert held.camera is sim1 and held.data is not None

        sim1.write_fault = None
        command = await ok(client, actor, "recover")
        results = keywords(command, "recovered")
        assert sorted(r["source"] for r in results) == ["memory", "spool"]
        assert all(r["recovered"] for r in results)
        assert actor.camera_system.unsaved_exposures == []
        for name in ("sim1-0001.fits", "sim1-0002.fits"):
            verified(tmp_path / "data" / "sim1" / name).close()
    finally:
        await actor.stop()


async def test_a_locked_spool_fails_in_bounded_time_and_keeps_the_frame(
    client, tmp_path
):
    config = actor_config(tmp_path)
    config["cameras"]["sim1"].update(write_retries=0)
    actor = await start_actor(config)
    camera(actor, "sim1").write_fault = refuse_target
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    held = os.open(spool, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)  # as a suspended `camactor recover` would
    try:
        start = time.monotonic()
        command = await fails(client, actor, "expose sim1 0.05", time_limit=15)
        assert time.monotonic() - start < LOCK_TIMEOUT + 5
        assert "is busy" in command.replies[-1].message["error"]
        assert len(actor.camera_system.unsaved_exposures) == 1

        start = time.monotonic()
        command = await fails(client, actor, "recover", time_limit=15)
        assert time.monotonic() - start < 2 * LOCK_TIMEOUT + 5
        errors = [r["error"] or "" for r in keywords(command, "recovered")]
        assert any("is busy" in e for e in errors), errors
        assert len(actor.camera_system.unsaved_exposures) == 1

        fcntl.flock(held, fcntl.LOCK_UN)
        camera(actor, "sim1").write_fault = None
        command = await ok(client, actor, "recover")
        assert [r["source"] for r in keywords(command, "recovered")] == ["memory"]
        verified(tmp_path / "data" / "sim1" / "sim1-0001.fits").close()
    finally:
        os.close(held)
        await actor.stop()
