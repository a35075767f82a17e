"""Acceptance of the INDI backend through the actor over RabbitMQ.

A real actor (``backend: indi``) drives a real indi_simulator_ccd, which runs in
a loopback-only network namespace (``indi_fixtures``); commands go through
RabbitMQ with CLU's AMQPClient. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import ReplyLog, fits_files, image, ok, wait_for
from astropy.time import Time
from indi_fixtures import DEVICE, IndiServer

from actor.actor import CameraActor
from camera_core import ExposurePhase
from camera_core.backends.indi import INDICamera
from camera_core.backends.indi_device import as_float
from camera_core.backends.indi_waiters import event_is


def indi_config(server: IndiServer, tmp_path: Path) -> dict[str, Any]:
    """An actor configuration with the simulator's CCD as camera ``ccd``."""
    config = actor_config(tmp_path)
    del config["simulator"]
    config["backend"] = "indi"
    config["indi"] = {"host": server.host, "port": server.port, "timeout": 5}
    config["cameras"] = {
        "ccd": {
            "uid": DEVICE,
            "spool_dir": str(tmp_path / "spool"),
            "exposure_timeout_margin": 10.0,
            "temperature_poll_interval": 0.1,
            "polling_period_ms": 100,
        }
    }
    return config


@pytest.fixture
async def indi_actor(indi_server, tmp_path):
    actor = await start_actor(indi_config(indi_server, tmp_path))
    yield actor
    async with asyncio.timeout(20):
        await actor.stop()


def ccd(actor: CameraActor) -> INDICamera:
    found = actor.camera_system.get_camera(name="ccd")
    assert found, "camera ccd is not in the system"
    return found


def one(command, keyword: str) -> dict[str, Any]:
    (value,) = [v for v in keywords(command, keyword) if v["camera"] == "ccd"]
    return value


async def test_binned_roi_light_exposure(indi_actor, client, tmp_path, indi_server):
    actor = indi_actor
    command = await ok(client, actor, "binning ccd 2 2")
    assert one(command, "binning") == {"camera": "ccd", "horizontal": 2, "vertical": 2}
    command = await ok(client, actor, "area ccd 101 300 51 150")
    assert one(command, "area") == {
        "camera": "ccd", "x0": 101, "x1": 300, "y0": 51, "y1": 150
    }  # fmt: skip
    before = Time.now()
    command = await ok(client, actor, "expose ccd 1", time_limit=20)
    after = Time.now()
    (written,) = keywords(command, "filename")
    (path,) = fits_files(tmp_path, "ccd")
    assert written["path"] == str(path)
    header, shape = image(path)
    assert shape == (50, 100)  # 200 x 100 unbinned pixels, binned 2 x 2
    assert header["IMAGETYP"] == "object"
    assert header["EXPTIME"] == pytest.approx(1.0)
    assert (header["XBINNING"], header["YBINNING"]) == (2, 2)
    assert (header["XORGSUBF"], header["YORGSUBF"]) == (100, 50)
    assert header["DETSIZE"] == "[1:1280,1:1024]"
    assert (header["PIXSIZE1"], header["PIXSIZE2"]) == pytest.approx((5.2, 5.2))
    assert header["INSTRUME"] == DEVICE
    assert header["INDIDRV"].startswith("indi_simulator_ccd")
    assert header["GAIN"] == indi_server.get_number("CCD_GAIN", "GAIN")
    assert header["CCD-TEMP"] == pytest.approx(
        indi_server.get_number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE"), abs=0.5
    )
    obs = Time(header["DATE-OBS"], scale=header["TIMESYS"].lower())
    assert (obs - before).sec > -0.5 and (after - obs).sec > 0.9


@pytest.mark.parametrize(
    "flag, imagetyp, exptime, switch",
    [("--bias", "bias", 0.0, "FRAME_BIAS"), ("--dark", "dark", 0.5, "FRAME_DARK")],
)
async def test_bias_and_dark(
    indi_actor, client, tmp_path, indi_server, flag, imagetyp, exptime, switch
):
    await ok(client, indi_actor, f"expose ccd 0.5 {flag}", time_limit=20)
    (path,) = fits_files(tmp_path, "ccd")
    header, shape = image(path)
    assert shape == (1024, 1280)
    assert (header["IMAGETYP"], header["EXPTIME"]) == (imagetyp, exptime)
    assert indi_server.get_switches_on("CCD_FRAME_TYPE") == [switch]


async def test_abort_mid_exposure(indi_actor, client, tmp_path, indi_server):
    actor = indi_actor
    camera = ccd(actor)
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    exposing = asyncio.ensure_future(send(client, actor, "expose ccd 10", 30))
    try:
        await wait_for(lambda: camera.progress.phase is ExposurePhase.INTEGRATING, 5)
        await asyncio.sleep(0.5)
        start = time.monotonic()
        abort = await send(client, actor, "abort ccd", time_limit=5)
        command = await asyncio.wait_for(exposing, 5)
        elapsed = time.monotonic() - start
        await wait_for(
            lambda: log.values("exposure_state")[-1][1]["phase"] != "integrating", 2
        )
    finally:
        exposing.cancel()
        client.remove_reply_callback(log)
    assert abort.status.did_succeed
    assert command.status.did_fail
    assert command.replies[-1].message_code.value == "f"
    assert elapsed < 1.0
    states = [s for _, s in log.values("exposure_state") if s["camera"] == "ccd"]
    assert states[-1]["phase"] == "aborted", states
    assert fits_files(tmp_path, "ccd") == []
    assert indi_server.get_state("CCD_EXPOSURE") == "Idle"  # the device stopped too


async def test_temperature_set_point_reached(indi_actor, client, indi_server):
    command = await ok(client, indi_actor, "temperature ccd -1.5 --timeout 30", 40)
    state = one(command, "temperature")
    assert state["set_point"] == -1.5 and state["reached"] is True
    assert state["ccd_temp"] == pytest.approx(-1.5, abs=0.5)
    device = indi_server.get_number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE")
    assert device == pytest.approx(-1.5, abs=0.5)


async def test_gain_set_and_read_back(indi_actor, client, indi_server):
    command = await ok(client, indi_actor, "gain ccd --gain 30 --offset 100")
    assert one(command, "gain") == {
        "camera": "ccd", "gain": 30.0, "offset": 100, "readout_mode": None
    }  # fmt: skip
    command = await ok(client, indi_actor, "gain ccd")
    assert (one(command, "gain")["gain"], one(command, "gain")["offset"]) == (30, 100)
    assert indi_server.get_number("CCD_GAIN", "GAIN") == 30
    assert indi_server.get_number("CCD_OFFSET", "OFFSET") == 100


async def test_remaining_counts_down(indi_actor, client, indi_server):
    """``remaining`` follows the device's own CCD_EXPOSURE countdown.

    The simulator runs at SIM_TIME_FACTOR 0.5: it counts a 6 s exposure down
    in 3 s, so a countdown of ours from the requested time would not match.
    """
    actor = indi_actor
    camera = ccd(actor)
    indi_server.set_number("SIMULATOR_SETTINGS", "SIM_TIME_FACTOR", 0.5)
    device: list[float] = []  # the values the device sent

    def device_update(event) -> None:
        if event_is(event, DEVICE, "CCD_EXPOSURE") and event.state == "Busy":
            device.append(as_float(event.get("CCD_EXPOSURE_VALUE")))

    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    camera.connection.add_listener(device_update)
    try:
        await ok(client, actor, "expose ccd 6", time_limit=20)
    finally:
        client.remove_reply_callback(log)
        camera.connection.remove_listener(device_update)
    states = [
        (t, s)
        for t, s in log.values("exposure_state")
        if s["camera"] == "ccd" and s["phase"] == "integrating"
    ]
    assert len(states) >= 4, states
    remaining = [s["remaining"] for _, s in states]
    assert all(b < a for a, b in itertools.pairwise(remaining)), remaining
    assert remaining[0] > 5.4 and remaining[-1] < 1.0
    assert states[-1][0] - states[0][0] >= 1.5
    # Each is the device's last value, less the time since: it updates every
    # 0.1 s, but not in the last second.
    unmatched = [
        r for r in remaining if r > 1 and not any(0 <= v - r < 0.3 for v in device)
    ]
    assert not unmatched, (unmatched, device)
    assert [s["phase"] for _, s in log.values("exposure_state")][-1] == "done"


async def test_server_restart_reconnects_with_settings(
    indi_actor, client, indi_server, tmp_path
):
    actor = indi_actor
    await ok(client, actor, "binning ccd 2 2")
    await ok(client, actor, "gain ccd --gain 40")
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    try:
        indi_server.kill()
        killed = time.monotonic()
        await wait_for(lambda: log.values("camera_disconnected"), 6)
        (at, lost), *_ = log.values("camera_disconnected")
        assert at - killed < 5.0
        assert lost["camera"] == "ccd" and "lost" in lost["error"]
        command = await send(client, actor, "expose ccd 0.1", time_limit=5)
        assert command.status.did_fail  # no camera while the server is away

        indi_server.start(configure=False)  # fresh device state
        await wait_for(lambda: log.values("camera_connected"), 20)
        (_, connected), *_ = log.values("camera_connected")
        assert connected == {"camera": "ccd", "uid": DEVICE}
    finally:
        client.remove_reply_callback(log)
    command = await ok(client, actor, "binning ccd")
    assert one(command, "binning") == {"camera": "ccd", "horizontal": 2, "vertical": 2}
    command = await ok(client, actor, "gain ccd")
    assert one(command, "gain")["gain"] == 40.0
    number = indi_server.get_number
    assert (number("CCD_BINNING", "HOR_BIN"), number("CCD_GAIN", "GAIN")) == (2, 40)
    assert number("POLLING_PERIOD", "PERIOD_MS") == 100
    await ok(client, actor, "expose ccd 0.2", time_limit=20)
    (path,) = fits_files(tmp_path, "ccd")
    assert image(path)[1] == (512, 640)
