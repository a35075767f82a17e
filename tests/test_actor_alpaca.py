"""Acceptance of the Alpaca backend through the actor, over RabbitMQ.

The actor drives camera 0 of a real ``alpaca-simulators`` server (with an
offline star catalogue). Simulator deviations from ASCOM (DEVICES.md) are not
asserted as correct: the check that meets one is a strict xfail naming it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from actor_fixtures import actor_config, keywords, start_actor
from actor_test_helpers import (
    ReplyLog,
    camera,
    codes,
    errors,
    failed,
    fits_files,
    image,
    ok,
    wait_for,
)
from alpaca_fixtures import AlpacaServer, device_value
from astropy.io import fits
from astropy.time import Time

from actor.actor import CameraActor
from actor.config import validate_config
from camera_core.backends.alpaca import AlpacaCameraSystem

pytestmark = pytest.mark.timeout(90)

NAME = "acam"


def alpaca_actor_config(tmp_path: Path, server: AlpacaServer) -> dict[str, Any]:
    """An actor configuration with the alpaca backend and one camera."""
    config = actor_config(tmp_path)
    del config["simulator"]
    config["backend"] = "alpaca"
    config["alpaca"] = {"host": server.host, "port": server.port, "timeout": 5}
    config["cameras"] = {
        NAME: {
            "uid": server.camera_uid,
            "spool_dir": str(tmp_path / "spool"),
            "exposure_timeout_margin": 10.0,
            "temperature_poll_interval": 0.1,
        }
    }
    return validate_config(config)


async def run_actor(tmp_path: Path, server: AlpacaServer) -> CameraActor:
    actor = await start_actor(alpaca_actor_config(tmp_path, server))
    assert isinstance(actor.camera_system, AlpacaCameraSystem)
    return actor


@pytest.fixture
async def aactor(alpaca: AlpacaServer, tmp_path: Path):
    """An actor on the module's (freshly reset) simulator."""
    actor = await run_actor(tmp_path, alpaca)
    yield actor
    await actor.stop()


async def test_light_frame_with_binned_roi(aactor, client, tmp_path):
    await ok(client, aactor, f"binning {NAME} 2")
    area = await ok(client, aactor, f"area {NAME} 1 512 1 256")
    assert keywords(area, "area")[-1] == {
        "camera": NAME,
        "x0": 1,
        "x1": 512,
        "y0": 1,
        "y1": 256,
    }
    command = await ok(client, aactor, f"expose {NAME} 1", time_limit=20)
    (written,) = keywords(command, "filename")
    files = fits_files(tmp_path, NAME)
    assert [str(f) for f in files] == [written["path"]]
    header, shape = image(files[0])
    assert shape == (128, 256)  # rows of y: (NumY, NumX)
    assert header["IMAGETYP"] == "object" and header["EXPTIME"] == 1.0
    assert header["XBINNING"] == 2 and header["YBINNING"] == 2
    assert header["XPIXSZ"] == 20.0 and header["YPIXSZ"] == 20.0
    assert header["SENSOR"] == "Simulator Sensor"
    assert header["CCD-TEMP"] == pytest.approx(10.0, abs=0.5)
    assert header["CAMUID"] == aactor.camera_system.cameras[0].uid
    assert isinstance(header["GAIN"], float) and header["OFFSET"] == 1
    device_start = Time(header["DATE-DEV"], scale="utc")
    assert abs((Time(header["DATE-OBS"], scale="tai") - device_start).sec) < 0.01
    assert abs((Time.now() - device_start).sec) < 30
    with fits.open(files[0]) as hdul:
        data = hdul[0].data
    assert data.max() > 20 * np.median(data)  # stars of the offline catalogue


@pytest.mark.parametrize(
    "flag, exptime, imagetyp", [("--bias", 0.0, "bias"), ("--dark", 0.5, "dark")]
)
async def test_bias_and_dark(aactor, client, tmp_path, flag, exptime, imagetyp):
    text = f"expose {NAME} {flag}" if flag == "--bias" else f"expose {NAME} 0.5 {flag}"
    await ok(client, aactor, text, time_limit=20)
    header, shape = image(fits_files(tmp_path, NAME)[0])
    assert shape == (1024, 1024)
    assert header["IMAGETYP"] == imagetyp
    assert header["EXPTIME"] == pytest.approx(exptime)
    with fits.open(fits_files(tmp_path, NAME)[0]) as hdul:
        assert hdul[0].data.max() < 5000  # shutter closed: no stars


async def test_abort_mid_exposure(own_alpaca_server, client, tmp_path):
    actor = await run_actor(tmp_path, own_alpaca_server)
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    try:
        exposure = await client.send_command(
            actor.name, f"expose {NAME} 2", await_command=False, time_limit=15
        )
        acam = camera(actor, NAME)
        await wait_for(lambda: acam.progress.phase.value == "integrating", timeout=5)
        await asyncio.sleep(0.3)
        start = time.monotonic()
        await ok(client, actor, f"abort {NAME}")
        async with asyncio.timeout(1.0):
            await exposure
        assert time.monotonic() - start < 1.0
        assert failed(exposure), codes(exposure)
        assert "abort" in errors(exposure).lower()
        await wait_for(
            lambda: any(
                s["phase"] == "aborted" for _, s in log.values("exposure_state")
            ),
            timeout=2,
        )
        (_, last_state) = log.values("exposure_state")[-1]
        assert last_state["phase"] == "aborted", log.values("exposure_state")
        assert acam.progress.phase.value == "aborted" and not acam.exposing
        assert fits_files(tmp_path, NAME) == []
    finally:
        client.remove_reply_callback(log)
        await actor.stop()


async def test_temperature_set_point_reached(aactor, client):
    start = time.monotonic()
    command = await ok(
        client, aactor, f"temperature {NAME} -10 --timeout 15", time_limit=20
    )
    took = time.monotonic() - start
    final = keywords(command, "temperature")[-1]
    assert final["camera"] == NAME and final["set_point"] == -10.0
    assert final["ccd_temp"] == pytest.approx(-10.0, abs=0.5)
    assert final["reached"] is True
    # The simulator cools exponentially over its cooling_time (3 s here) from
    # +10 °C; within 0.5 °C of -10 °C after about 2 s, not instantly.
    assert 1.0 < took < 10.0


async def test_offset_and_readout_mode_set_and_read_back(aactor, client):
    command = await ok(client, aactor, f"gain {NAME} --offset 2 --readout-mode Normal")
    reported = keywords(command, "gain")[-1]
    assert reported["offset"] == 2 and reported["readout_mode"] == "Normal"


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="simulator deviation: the Gain setter stores the value plus one",
)
async def test_gain_set_and_read_back(aactor, client):
    command = await ok(client, aactor, f"gain {NAME} --gain 3")
    assert keywords(command, "gain")[-1]["gain"] == 3.0


async def test_gain_read_back_is_the_listed_value(aactor, client, alpaca, tmp_path):
    # The device's Gain is an index into Gains ("1".."10"): the configured index
    # 1 is the gain "2". Nothing is set here, so the Gain setter's deviation
    # plays no part.
    index = device_value(alpaca, "gain")
    listed = float(device_value(alpaca, "gains")[index])
    assert listed != index  # a raw index would not pass for the value
    command = await ok(client, aactor, f"gain {NAME}")
    assert keywords(command, "gain")[-1]["gain"] == listed
    await ok(client, aactor, f"expose {NAME} --bias", time_limit=20)
    header, _ = image(fits_files(tmp_path, NAME)[0])
    assert header["GAIN"] == listed


async def test_gain_outside_the_cameras_list_is_refused(aactor, client):
    command = await client.send_command(
        aactor.name, f"gain {NAME} --gain 2.5", time_limit=10
    )
    assert failed(command) and "not one of" in errors(command)


async def test_remaining_counts_down(aactor, client):
    log = ReplyLog(aactor.name)
    client.add_reply_callback(log)
    try:
        await ok(client, aactor, f"expose {NAME} 3 --dark", time_limit=20)
    finally:
        client.remove_reply_callback(log)
    states = [
        (t, s)
        for t, s in log.values("exposure_state")
        if s["camera"] == NAME and s["phase"] == "integrating"
    ]
    assert len(states) >= 4, states
    remaining = [s["remaining"] for _, s in states]
    assert all(b <= a for a, b in itertools.pairwise(remaining)), remaining
    assert len(set(remaining)) >= 4, remaining
    assert remaining[0] > 2.0 and remaining[-1] < 1.0
    assert [s["phase"] for _, s in log.values("exposure_state")][-1] == "done"


async def test_status_and_capabilities(aactor, client):
    status = await ok(client, aactor, f"status {NAME}")
    (state,) = keywords(status, "status")
    assert state["connected"] is True and state["uid"].endswith("/camera/0")
    assert state["device"]["sensor_name"] == "Simulator Sensor"
    assert keywords(status, "binning") and keywords(status, "temperature")
    caps = keywords(await ok(client, aactor, f"capabilities {NAME}"), "capabilities")
    assert caps[-1]["cooler"] and caps[-1]["abort"] and not caps[-1]["shutter"]
    assert caps[-1]["limits"]["max_binning"] == [8, 8]
