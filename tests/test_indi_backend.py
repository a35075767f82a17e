"""The INDI backend against a real indi_simulator_ccd (library level).

The server runs in a loopback-only network namespace (see ``indi_fixtures``);
each test gets a fresh server. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from indi_fixtures import DEVICE, DRIVER, IndiServer

from camera_core import (
    CameraConnectionError,
    CameraError,
    CameraEvent,
    EventListener,
    ExposureAborted,
    ExposureError,
    ExposurePhase,
)
from camera_core.backends.indi import INDICamera, INDICameraSystem
from camera_core.backends.indi_device import as_float
from camera_core.backends.indi_waiters import event_is


def make_system(
    server: IndiServer, tmp_path: Path, timeout: float = 5, **camera
) -> INDICameraSystem:
    entry = {
        "uid": DEVICE,
        "spool_dir": str(tmp_path / "spool"),
        "exposure_timeout_margin": 10.0,
        "temperature_poll_interval": 0.1,
        "image_namer": {"dirname": str(tmp_path / "data")},
        **camera,
    }
    config = {
        "indi": {"host": server.host, "port": server.port, "timeout": timeout},
        "cameras": {"ccd": entry},
    }
    return INDICameraSystem(camera_config=config)


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


async def until(predicate, timeout: float, step: float = 0.02) -> float:
    """Polls ``predicate`` until true; returns the seconds it took."""
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)
    return time.monotonic() - start


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


async def test_unknown_device(indi_server, tmp_path):
    system = make_system(indi_server, tmp_path, timeout=1)
    try:
        with pytest.raises(CameraConnectionError, match="No INDI device 'Nope'"):
            await system.add_camera(name="nope", uid="Nope")
    finally:
        await system.disconnect()


async def test_unreachable_server(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    system = make_system(IndiServer(tmp_path), tmp_path, timeout=1)
    system.connection.port = port
    try:
        start = time.monotonic()
        with pytest.raises(CameraConnectionError, match="not reachable"):
            await system.add_camera(name="ccd")
        assert time.monotonic() - start < 3
        assert await system.list_available_cameras() == []
    finally:
        await system.disconnect()


async def test_server_lost_during_exposure(ccd, indi_server):
    task = asyncio.ensure_future(ccd.expose(20.0))
    await until(lambda: ccd.progress.phase is ExposurePhase.INTEGRATING, 5)
    indi_server.kill()
    start = time.monotonic()
    with pytest.raises(ExposureError, match="lost"):
        async with asyncio.timeout(10):
            await task
    assert time.monotonic() - start < 5
    assert not ccd.connected


async def test_server_restart_reconnects_and_restores(system, indi_server):
    events: list[tuple[float, CameraEvent, dict]] = []

    class Recorder(EventListener):
        def put_event(self, event, payload):
            events.append((time.monotonic(), event, payload))

    system.notifier.register_listener(Recorder(autostart=False))
    ccd = await system.add_camera(name="ccd")
    await ccd.set_binning(2, 2)
    await ccd.set_image_area((11, 410, 21, 320))
    await ccd.set_gain(40)
    await ccd.set_offset(200)
    await ccd.set_polling_period(100)
    await ccd.set_temperature(-1.0, timeout=30)
    await ccd.expose(0.05, image_type="dark")  # frame type: dark
    await system.start_camera_poller(0.2)

    indi_server.kill()
    killed = time.monotonic()
    await until(lambda: not ccd.connected, 5)
    assert time.monotonic() - killed < 5
    lost = [p for t, e, p in events if e is CameraEvent.CAMERA_DISCONNECTED]
    assert lost and "lost" in lost[-1]["error"], events
    assert await system.list_available_cameras() == []
    await until(lambda: not system.cameras, 3)  # the poller removed it

    indi_server.start(configure=False)  # a fresh driver: every setting at default
    await until(lambda: any(c.connected for c in system.cameras), 15)
    again = system.get_camera(name="ccd")
    assert await again.get_binning() == (2, 2)
    assert await again.get_image_area() == (11, 410, 21, 320)
    assert await again.get_gain() == 40.0
    assert await again.get_offset() == 200
    assert again.set_point == -1.0
    number = indi_server.get_number
    assert (number("CCD_BINNING", "HOR_BIN"), number("CCD_GAIN", "GAIN")) == (2, 40)
    assert number("CCD_FRAME", "X") == 10 and number("CCD_FRAME", "HEIGHT") == 300
    assert number("POLLING_PERIOD", "PERIOD_MS") == 100
    conn = again.connection
    assert conn.switches_on(DEVICE, "CCD_FRAME_TYPE") == ["FRAME_DARK"]
    assert conn.switches_on(DEVICE, "UPLOAD_MODE") == ["UPLOAD_CLIENT"]
    await until(lambda: number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE") < -0.5, 5)
    exposure = await again.expose(0.1)
    assert exposure.data.shape == (150, 200)


async def test_frozen_server_is_lost_by_ping(ccd, indi_server):
    """A server that keeps the socket open but never answers (SIGSTOP)."""
    indi_server.freeze()
    frozen = time.monotonic()
    try:
        await until(lambda: not ccd.connected, 6)
        assert time.monotonic() - frozen < 5
        assert "ping" in ccd.connection.error
        assert await ccd.camera_system.list_available_cameras() == []
    finally:
        indi_server.freeze(False)
    await until(lambda: ccd.connection.alive, 15)
    assert await ccd.camera_system.list_available_cameras() == [DEVICE]
    await ccd.connect()  # what the poller does
    assert (await ccd.expose(0.05)).data.shape == (1024, 1280)


async def test_a_busy_driver_is_not_a_lost_server(ccd, indi_server):
    """Only the driver stops answering for 3.5 s (say, a blocking USB readout).

    indiserver forwards pings to the driver: a few seconds without an answer
    are not a lost server (a killed one is seen at once, by end of stream).
    """
    conn = ccd.connection
    indi_server.freeze_one()
    try:
        start = time.monotonic()
        while time.monotonic() - start < 3.5:
            assert ccd.connected and conn.alive, conn.error
            await asyncio.sleep(0.05)
    finally:
        indi_server.freeze_one(frozen=False)
    for _ in range(20):  # its late answers arrive
        assert ccd.connected and conn.alive, conn.error
        await asyncio.sleep(0.05)
    assert await ccd.set_gain(20) == 20.0


async def test_a_busy_device_not_in_use_does_not_matter(indi_server, tmp_path):
    """Pings go to the device in use, not to whichever the server lists first."""
    focuser = "indi_simulator_focus"
    indi_server.restart(drivers=(focuser, DRIVER))
    system = make_system(indi_server, tmp_path)
    try:
        indi_server.freeze_one()  # the CCD defines itself after the focuser
        try:
            system.connection.start()
            await until(lambda: system.connection.devices(), 5)
        finally:
            indi_server.freeze_one(frozen=False)
        ccd = await system.add_camera(name="ccd")
        assert ccd.connection.devices() == ["Focuser Simulator", DEVICE]
        indi_server.freeze_one(focuser)
        try:
            start = time.monotonic()
            while time.monotonic() - start < 5.5:
                assert ccd.connected, ccd.connection.error
                await asyncio.sleep(0.05)
        finally:
            indi_server.freeze_one(focuser, False)
        assert (await ccd.expose(0.05)).data.shape == (1024, 1280)
    finally:
        async with asyncio.timeout(15):
            await system.disconnect()


async def test_a_driver_busy_during_an_exposure(ccd, indi_server):
    """A driver may block for a while during an exposure (a readout)."""
    task = asyncio.ensure_future(ccd.expose(1.0))
    try:
        await until(lambda: ccd.progress.phase is ExposurePhase.INTEGRATING, 5)
        indi_server.freeze_one()
        try:
            await asyncio.sleep(5.0)  # longer than a ping may wait
            assert ccd.connected and ccd.connection.alive, ccd.connection.error
        finally:
            indi_server.freeze_one(frozen=False)
        async with asyncio.timeout(10):
            exposure = await task
    finally:
        task.cancel()
    assert exposure.data.shape == (1024, 1280)


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


#: Starts the fixture's processes, prints their pids, then waits to be killed.
_HOLDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from indi_fixtures import IndiServer
server = IndiServer(Path(sys.argv[2]))
server.open()
server.start(configure=False)
print(" ".join(map(str, server.pids().values())), flush=True)
time.sleep(60)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_fixture_processes_die_with_pytest(tmp_path):
    """A killed pytest leaves no indiserver, driver or forwarder behind."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(Path(__file__).parent), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pids: list[int] = []
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 30)
        line = holder.stdout.readline() if ready else b""
        pids = [int(pid) for pid in line.split()]
        assert len(pids) == 4, (line, holder.stderr.read() if holder.poll() else "")
        assert all(_running(pid) for pid in pids)
        holder.kill()  # as a CI timeout kills pytest
        holder.wait(5)
        deadline = time.monotonic() + 5
        while any(map(_running, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if _running(pid)]
    finally:
        holder.kill()
        holder.wait(5)
        for pid in filter(_running, pids):  # what the holder started, if left
            os.kill(pid, signal.SIGKILL)
