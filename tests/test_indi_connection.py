"""The INDI backend against a real indi_simulator_ccd (library level): the
connection to the server, its liveness (pings) and recovery.

The server runs in a loopback-only network namespace (see ``indi_fixtures``);
each test gets a fresh server. Every wait is bounded. Settings and exposures
are tested in ``test_indi_backend``.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from indi_fixtures import DEVICE, DRIVER, IndiServer
from indi_test_helpers import make_system, until

from camera_core import (
    CameraConnectionError,
    CameraEvent,
    EventListener,
    ExposureError,
    ExposurePhase,
)
from camera_core.backends.indi import INDICamera


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
