"""The INDI backend against a real indi_simulator_ccd (library level): the
device's settings and exposures.

The server runs in a loopback-only network namespace (see ``indi_fixtures``);
each test gets a fresh server. Every wait is bounded. Connection, liveness and
recovery are tested in ``test_indi_connection``.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from indi_fixtures import DEVICE, DRIVER
from indi_test_helpers import make_system, until

from camera_core import CameraError, ExposureAborted, ExposurePhase
from camera_core.backends.indi import INDICamera
from camera_core.backends.indi_device import as_float
from camera_core.backends.indi_waiters import event_is


@pytest.fixture
async def system(indi_server, tmp_path):
    system = make_system(indi_server, tmp_path)
    yield system
    async with asyncio.timeout(15):
        await system.disconnect()


@pytest.fixture
async def ccd(system) -> INDICamera:
    async with asyncio.timeout(15):
        return await system.add_camera(name="ccd")


async def test_lists_the_ccd_device(system):
    assert not system.connection.alive
    start = time.monotonic()
    assert await system.list_available_cameras() == [DEVICE]  # waits the 1st time
    assert time.monotonic() - start < 2
    assert system.connection.alive


async def test_limits_and_settings_come_from_the_device(ccd):
    limits = ccd.limits
    assert (limits.width, limits.height) == (1280, 1024)
    assert limits.pixel_size == pytest.approx((5.2, 5.2))
    assert limits.max_binning == (4, 4)
    assert limits.exptime_min == pytest.approx(0.01)
    assert (limits.gain_min, limits.gain_max) == (0.0, 100.0)
    assert (limits.temperature_min, limits.temperature_max) == (-50.0, 50.0)
    assert await ccd.get_image_area() == (1, 1280, 1, 1024)
    conn = ccd.connection
    assert conn.switches_on(DEVICE, "UPLOAD_MODE") == ["UPLOAD_CLIENT"]
    assert conn.switches_on(DEVICE, "CONNECTION") == ["CONNECT"]
    assert ccd.capabilities["cooler"] and ccd.capabilities["gain"]
    assert not ccd.capabilities["shutter"]  # the simulator has no shutter property


async def test_binned_roi_exposure(ccd, indi_server):
    assert await ccd.set_binning(2, 2) == (2, 2)
    assert await ccd.set_image_area((101, 300, 51, 150)) == (101, 300, 51, 150)
    # The device holds unbinned, 0-based values.
    assert indi_server.get_number("CCD_FRAME", "X") == 100
    assert indi_server.get_number("CCD_FRAME", "WIDTH") == 200
    assert indi_server.get_number("CCD_BINNING", "VER_BIN") == 2
    before = Time.now()
    exposure = await ccd.expose(1.0, write=True)
    after = Time.now()
    assert exposure.data.shape == (50, 100)
    assert exposure.data.dtype == np.uint16
    assert exposure.data.std() > 0  # noise, not an empty frame
    header = fits.getheader(exposure.filename)
    assert (header["NAXIS1"], header["NAXIS2"]) == (100, 50)
    assert header["IMAGETYP"] == "object" and header["EXPTIME"] == 1.0
    assert (header["XBINNING"], header["YBINNING"]) == (2, 2)
    assert (header["XORGSUBF"], header["YORGSUBF"]) == (100, 50)
    assert header["DETSIZE"] == "[1:1280,1:1024]"
    assert header["PIXSIZE1"] == pytest.approx(5.2)
    assert header["INSTRUME"] == DEVICE
    assert header["GAIN"] == indi_server.get_number("CCD_GAIN", "GAIN")
    assert header["CCD-TEMP"] == pytest.approx(0.0, abs=0.5)
    obs = Time(header["DATE-OBS"], scale=header["TIMESYS"].lower())
    assert (obs - before).sec > -0.5 and (after - obs).sec > 0.9  # device start


@pytest.mark.parametrize(
    "image_type, switch",
    [("bias", "FRAME_BIAS"), ("dark", "FRAME_DARK"), ("flat", "FRAME_FLAT")],
)
async def test_frame_types(ccd, indi_server, image_type, switch):
    exposure = await ccd.expose(0.2, image_type=image_type)
    assert indi_server.get_switches_on("CCD_FRAME_TYPE") == [switch]
    assert exposure.data.shape == (1024, 1280)
    assert exposure.exptime == (0.0 if image_type == "bias" else 0.2)
    await ccd.expose(0.05)
    assert indi_server.get_switches_on("CCD_FRAME_TYPE") == ["FRAME_LIGHT"]


async def test_remaining_counts_down_from_the_device(ccd, indi_server):
    """The remaining time is the device's own CCD_EXPOSURE countdown.

    The simulator runs at SIM_TIME_FACTOR 0.5: it counts a 4 s exposure down
    in 2 s, so a countdown of ours from the requested time would not match.
    """
    indi_server.set_number("SIMULATOR_SETTINGS", "SIM_TIME_FACTOR", 0.5)
    matched: list[tuple[float, float]] = []  # (device value, remaining)

    def device_update(event) -> None:  # runs after the camera's own listener
        if (
            event_is(event, DEVICE, "CCD_EXPOSURE")
            and event.state == "Busy"
            and ccd.progress.phase is ExposurePhase.INTEGRATING
        ):
            value = as_float(event.get("CCD_EXPOSURE_VALUE"))
            matched.append((value, ccd.progress.remaining))

    ccd.connection.add_listener(device_update)
    start = time.monotonic()
    task = asyncio.ensure_future(ccd.expose(4.0))
    seen: list[float] = []
    try:
        async with asyncio.timeout(10):
            while not task.done():
                if ccd.progress.phase is ExposurePhase.INTEGRATING:
                    seen.append(ccd.progress.remaining)
                await asyncio.sleep(0.05)
        await task
    finally:
        task.cancel()
        ccd.connection.remove_listener(device_update)
    assert time.monotonic() - start < 3.5  # the device's 2 s
    assert len(matched) >= 10, matched
    assert all(r == pytest.approx(v, abs=1e-3) for v, r in matched), matched
    values = [v for v, _ in itertools.groupby(seen)]
    assert len(values) >= 10, values
    assert all(b < a for a, b in itertools.pairwise(values)), values
    assert values[0] > 3.5 and values[-1] < 0.3


async def test_abort_mid_exposure(ccd, indi_server):
    task = asyncio.ensure_future(ccd.expose(10.0))
    await until(lambda: ccd.progress.phase is ExposurePhase.INTEGRATING, 5)
    await asyncio.sleep(0.5)
    start = time.monotonic()
    assert await ccd.abort() is True
    with pytest.raises(ExposureAborted):
        await task
    assert time.monotonic() - start < 1.0
    assert indi_server.get_state("CCD_EXPOSURE") == "Idle"  # the device stopped
    exposure = await ccd.expose(0.1)  # the camera is usable again
    assert exposure.data.shape == (1024, 1280)


async def test_set_point_reached(ccd, indi_server):
    assert await ccd.set_temperature(-1.0, timeout=30) is True
    assert await ccd.get_temperature() == pytest.approx(-1.0, abs=0.5)
    status = await ccd.cooler_status()
    assert status["set_point"] == -1.0 and status["reached"] is True
    assert indi_server.get_number(
        "CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE"
    ) == pytest.approx(-1.0, abs=0.5)


async def test_set_point_with_ramp(ccd):
    start = time.monotonic()
    assert await ccd.set_temperature(-2.0, ramp=60.0, timeout=30) is True
    assert time.monotonic() - start >= 1.5  # 2 °C at 1 °C/s, commanded by us


async def test_gain_and_offset(ccd, indi_server):
    assert await ccd.set_gain(30) == 30.0
    assert await ccd.set_offset(100) == 100
    assert indi_server.get_number("CCD_GAIN", "GAIN") == 30
    assert indi_server.get_number("CCD_OFFSET", "OFFSET") == 100
    with pytest.raises(CameraError, match="outside"):
        await ccd.set_gain(500)
    assert await ccd.get_gain() == 30.0


@pytest.mark.parametrize("held", ["indiserver", DRIVER])
async def test_an_earlier_image_is_not_taken_for_this_exposure(ccd, indi_server, held):
    """The end and image of an earlier exposure, just as ours starts, are ignored.

    Someone else's 0.3 s exposure is due while ``held`` is stopped, and our
    request waits. When it goes on, that image comes before our Busy (indiserver
    held: the driver had sent it) or just after (driver held: its timer runs
    first). Real drivers send such leftovers after an abort.
    """
    indi_server.set_number("CCD_EXPOSURE", "CCD_EXPOSURE_VALUE", 0.3)
    indi_server.freeze_one(held)
    try:
        await asyncio.sleep(0.5)
        task = asyncio.ensure_future(ccd.expose(2.0))
        await asyncio.sleep(0.3)
    finally:
        indi_server.freeze_one(held, frozen=False)
    resumed, resumed_at = time.monotonic(), Time.now()
    try:
        async with asyncio.timeout(10):
            exposure = await task
    finally:
        task.cancel()
    assert time.monotonic() - resumed > 1.9  # our 2 s, not the image at hand
    assert (exposure.obstime - resumed_at).sec > -0.2
