"""Acceptance tests of ``expose``, ``abort``, ``stop`` and ``finish`` over RabbitMQ.

A real actor with two small simulated cameras (sim1, sim2) is driven with CLU's
AMQPClient; every command is bounded by ``time_limit``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from actor_fixtures import keywords, send
from actor_test_helpers import (
    ReplyLog,
    camera,
    codes,
    data_dir,
    errors,
    failed,
    fails,
    fits_files,
    image,
    ok,
    wait_for,
)

FULL = (48, 64)  # the simulated frame, rows x columns


@pytest.mark.parametrize(
    "flag, imagetyp, exptime",
    [
        ("", "object", 0.1),
        ("--object", "object", 0.1),
        ("--flat", "flat", 0.1),
        ("--dark", "dark", 0.1),
        ("--bias", "bias", 0.0),
    ],
)
async def test_expose_image_types(actor, client, tmp_path, flag, imagetyp, exptime):
    command = await ok(client, actor, f"expose sim1 0.1 {flag}")
    (written,) = keywords(command, "filename")
    assert written["camera"] == "sim1"
    assert written["spooled"] is False
    assert written["checksum"] and written["datasum"]
    files = fits_files(tmp_path, "sim1")
    assert [str(f) for f in files] == [written["path"]] == [written["filename"]]
    header, shape = image(files[0])
    assert header["IMAGETYP"] == imagetyp
    assert header["EXPTIME"] == pytest.approx(exptime)
    assert shape == FULL
    assert fits_files(tmp_path, "sim2") == []


async def test_expose_bias_needs_no_exptime(actor, client, tmp_path):
    await ok(client, actor, "expose sim1 --bias")
    header, _ = image(fits_files(tmp_path, "sim1")[0])
    assert (header["IMAGETYP"], header["EXPTIME"]) == ("bias", 0.0)


@pytest.mark.parametrize(
    "text, match",
    [
        ("expose sim1", "EXPTIME is required"),
        ("expose sim1 -- -1", "EXPTIME must be"),
        ("expose nocam 0.1", "Unknown camera 'nocam'"),
        ("expose sim1 0.1 --count 0", ""),
        ("expose sim1 0.1 --stack 0", ""),
        ("expose sim1 0.1 --timeout 0", ""),
        ("expose sim1 sim2 0.1 -f both.fits", "--filename needs a single camera"),
        ("expose sim1 0.1 -f x.fits -c 2", "--filename needs a single camera"),
    ],
)
async def test_expose_refused(actor, client, tmp_path, text, match):
    await fails(client, actor, text, match=match)
    assert fits_files(tmp_path, "sim1") == fits_files(tmp_path, "sim2") == []


async def test_expose_filename_is_relative_to_the_data_dir(actor, client, tmp_path):
    command = await ok(client, actor, "expose sim1 0.1 -f night/custom.fits")
    target = data_dir(tmp_path, "sim1") / "night" / "custom.fits"
    assert target.is_file()
    assert keywords(command, "filename")[0]["path"] == str(target)
    absolute = tmp_path / "data" / "elsewhere.fits"  # absolute, inside data_dir
    await ok(client, actor, f"expose sim1 0.1 --filename {absolute}")
    assert absolute.is_file()
    # Outside data_dir: refused (see test_input_safety.py).
    outside = tmp_path / "elsewhere.fits"
    await fails(client, actor, f"expose sim1 0.1 -f {outside}", match="outside")
    assert not outside.exists()


async def test_expose_num_sets_the_sequence_number(actor, client, tmp_path):
    await ok(client, actor, "expose sim1 0.05 -n 0")
    await ok(client, actor, "expose sim1 0.05 --num 7 -c 2")
    names = [f.name for f in fits_files(tmp_path, "sim1")]
    assert names == ["sim1-0000.fits", "sim1-0007.fits", "sim1-0008.fits"]


async def test_expose_stack(actor, client, tmp_path):
    command = await ok(client, actor, "expose sim1 0.1 -s 3")
    assert len(keywords(command, "filename")) == 1
    (path,) = fits_files(tmp_path, "sim1")
    header, shape = image(path)
    assert header["STACK"] == 3
    assert header["EXPTIME"] == pytest.approx(0.1)
    assert header["EXPTIMEN"] == pytest.approx(0.3)
    assert shape == FULL


async def test_expose_ends_when_done(actor, client, tmp_path):
    start = time.monotonic()
    await ok(client, actor, "expose sim1 0.05")
    assert time.monotonic() - start < 0.4  # no fixed sleep after the frame


async def test_expose_count(actor, client, tmp_path):
    command = await ok(client, actor, "expose sim1 0.05 --count 3")
    written = keywords(command, "filename")
    files = fits_files(tmp_path, "sim1")
    assert len(files) == 3
    assert sorted(w["path"] for w in written) == [str(f) for f in files]
    assert len({w["exposure_id"] for w in written}) == 3


async def test_expose_no_postprocess(actor, client, tmp_path):
    command = await ok(client, actor, "expose sim1 0.05 --no-postprocess")
    assert len(keywords(command, "filename")) == 1
    assert len(fits_files(tmp_path, "sim1")) == 1


async def test_expose_timeout_fails_the_frame(actor, client, tmp_path):
    camera(actor, "sim1").inject_fault("readout_timeout")
    start = time.monotonic()
    command = await fails(
        client, actor, "expose sim1 0.1 --timeout 0.3", match="did not finish within"
    )
    assert time.monotonic() - start < 2.0
    assert "sim1" in errors(command)
    assert fits_files(tmp_path, "sim1") == []
    camera(actor, "sim1").clear_faults()
    await ok(client, actor, "expose sim1 0.05")  # the camera recovered


async def test_multi_camera_expose_is_concurrent(actor, client, tmp_path):
    start = time.monotonic()
    await ok(client, actor, "expose sim1 0.5")
    single = time.monotonic() - start
    start = time.monotonic()
    command = await ok(client, actor, "expose sim1 sim2 0.5")
    both = time.monotonic() - start
    assert both < 1.5 * single, (single, both)
    written = {w["camera"]: w["path"] for w in keywords(command, "filename")}
    assert set(written) == {"sim1", "sim2"}
    assert Path(written["sim2"]) == fits_files(tmp_path, "sim2")[0]
    assert Path(written["sim1"]) in fits_files(tmp_path, "sim1")
    assert Path(written["sim1"]).parent.name == "sim1"


async def test_multi_camera_expose_one_fails(actor, client, tmp_path):
    camera(actor, "sim2").inject_fault("readout_timeout")
    command = await send(
        client, actor, "expose sim1 sim2 0.1 --timeout 0.3", time_limit=10
    )
    assert failed(command), codes(command)
    per_camera = [e for e in keywords(command, "error") if isinstance(e, dict)]
    assert [e["camera"] for e in per_camera] == ["sim2"]
    assert "did not finish within" in per_camera[0]["error"]
    # The other camera's image is still written and reported.
    written = keywords(command, "filename")
    assert [w["camera"] for w in written] == ["sim1"]
    assert [str(f) for f in fits_files(tmp_path, "sim1")] == [written[0]["path"]]
    assert fits_files(tmp_path, "sim2") == []


async def test_second_expose_on_a_busy_camera_fails_at_once(actor, client, tmp_path):
    first = asyncio.ensure_future(send(client, actor, "expose sim1 1", time_limit=10))
    await wait_for(lambda: camera(actor, "sim1").exposing)
    delays = []
    for _ in range(3):
        start = time.monotonic()
        second = await send(client, actor, "expose sim1 0.1", time_limit=5)
        delays.append(time.monotonic() - start)
        assert failed(second)
        assert "camera sim1 is busy" in errors(second)
    assert sorted(delays)[1] < 0.1 and max(delays) < 0.3, delays
    assert camera(actor, "sim1").exposing  # the first one goes on
    first = await first
    assert codes(first)[-1] == ":"
    assert len(fits_files(tmp_path, "sim1")) == 1


async def start_exposure(actor, client, text: str):
    """Starts an exposure without waiting, returning when sim1 integrates."""
    command = await client.send_command(
        actor.name, text, await_command=False, time_limit=15
    )
    sim1 = camera(actor, "sim1")
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    return command


async def test_abort_mid_exposure(actor, client, tmp_path):
    exposure = await start_exposure(actor, client, "expose sim1 10")
    start = time.monotonic()
    abort = await ok(client, actor, "abort sim1")
    async with asyncio.timeout(1.0):
        await exposure
    assert time.monotonic() - start < 1.0
    assert failed(exposure), codes(exposure)
    assert "abort" in errors(exposure).lower()
    assert "sim1" in " ".join(str(r.message) for r in abort.replies)
    assert not camera(actor, "sim1").exposing
    assert fits_files(tmp_path, "sim1") == []
    await ok(client, actor, "expose sim1 0.05")  # usable again


async def test_abort_every_camera_and_the_sequence(actor, client, tmp_path):
    exposure = await start_exposure(actor, client, "expose sim1 sim2 5 -c 3")
    await wait_for(lambda: camera(actor, "sim2").exposing)
    await ok(client, actor, "abort")
    async with asyncio.timeout(1.0):
        await exposure
    assert failed(exposure)
    aborted = [e["camera"] for e in keywords(exposure, "error") if isinstance(e, dict)]
    assert sorted(aborted) == ["sim1", "sim2"]
    assert fits_files(tmp_path, "sim1") == fits_files(tmp_path, "sim2") == []
    assert actor.sequences == {}


async def test_abort_without_exposure_fails(actor, client):
    await fails(client, actor, "abort sim1", match="no exposure in progress")


async def test_stop_reads_out_early(actor, client, tmp_path):
    exposure = await start_exposure(actor, client, "expose sim1 10")
    await asyncio.sleep(0.3)
    start = time.monotonic()
    await ok(client, actor, "stop sim1")
    async with asyncio.timeout(2.0):
        await exposure
    assert time.monotonic() - start < 1.0
    assert codes(exposure)[-1] == ":", errors(exposure)
    (path,) = fits_files(tmp_path, "sim1")
    header, shape = image(path)
    assert 0.2 < header["EXPTIME"] < 1.5
    assert shape == FULL


async def test_stop_without_exposure_fails(actor, client):
    await fails(client, actor, "stop sim1", match="no exposure in progress")


async def test_finish_ends_a_count_sequence(actor, client, tmp_path):
    exposure = await start_exposure(actor, client, "expose sim1 -c 3 0.5")
    await ok(client, actor, "finish sim1")
    async with asyncio.timeout(3.0):
        await exposure
    assert codes(exposure)[-1] == ":", errors(exposure)
    files = fits_files(tmp_path, "sim1")
    assert 1 <= len(files) < 3
    assert len(keywords(exposure, "filename")) == len(files)


async def test_finish_without_sequence_fails(actor, client):
    await fails(client, actor, "finish sim1", match="no exposure sequence")


async def test_remaining_counts_down_at_1_hz(actor, client):
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    try:
        await ok(client, actor, "expose sim1 3", time_limit=10)
    finally:
        client.remove_reply_callback(log)
    states = [
        (t, s)
        for t, s in log.values("exposure_state")
        if s["camera"] == "sim1" and s["phase"] == "integrating"
    ]
    assert len(states) >= 4, states
    times = [t for t, _ in states]
    remaining = [s["remaining"] for _, s in states]
    assert all(b < a for a, b in itertools.pairwise(remaining)), remaining
    assert all(b - a <= 1.0 for a, b in itertools.pairwise(times)), times
    assert times[-1] - times[0] >= 2.0
    assert remaining[0] > 2.5 and remaining[-1] < 1.0
    phases = [s["phase"] for _, s in log.values("exposure_state")]
    assert phases[-1] == "done"
