"""The driver tutorial's code works, through the camera system and the actor.

``docs/tutorial/index.rst`` includes these files verbatim; here they run:
``driver.py`` over the made-up SDK ``vendorlib.py``, ``example.py`` and
``serve.py`` (the actor on the local RabbitMQ broker).
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from actor_fixtures import BROKER, keywords, send
from astropy.io import fits

from camera_core import (
    CameraConnectionError,
    CameraError,
    CameraEvent,
    EventListener,
    ExposureAborted,
    ExposureError,
)

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial"
MODULES = ("vendorlib", "driver", "example", "serve")


@pytest.fixture
def tut(monkeypatch):
    """The tutorial's modules, imported from docs/tutorial and then forgotten."""
    monkeypatch.syspath_prepend(str(TUTORIAL))
    for name in MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    modules = {name: importlib.import_module(name) for name in MODULES}
    yield type("Tutorial", (), modules)
    for name in MODULES:
        sys.modules.pop(name, None)


def system_config(tmp_path: Path) -> dict:
    return {
        "cameras": {
            "cam1": {
                "uid": "VL-1001",
                "image_namer": {"dirname": str(tmp_path)},
                "spool_dir": str(tmp_path / "spool"),
                "temperature_poll_interval": 0.02,
                "exposure_timeout_margin": 5.0,
            }
        }
    }


@pytest.fixture
async def camera(tut, tmp_path):
    system = tut.driver.VendorCameraSystem(
        tut.driver.VendorCamera, camera_config=system_config(tmp_path)
    )
    system.lib.cooling_rate = 200.0
    camera = await system.add_camera(name="cam1")
    yield camera
    await system.disconnect()


def sky(seconds: float, pixels: int = 1, dark: bool = False, lib=None) -> float:
    """The value of a (binned) pixel of the simulated SDK."""
    rate = lib.DARK_RATE + (0.0 if dark else lib.SKY_RATE)
    return lib.BIAS + rate * seconds * pixels


def test_driver_fits_in_200_lines():
    lines = (TUTORIAL / "driver.py").read_text().splitlines()
    assert len(lines) <= 200, f"driver.py has {len(lines)} lines"


def test_tutorial_includes_every_file_it_explains():
    page = (TUTORIAL / "index.rst").read_text()
    included = set(re.findall(r"^\.\. literalinclude:: (\S+)", page, re.M))
    assert {"driver.py", "example.py", "serve.py", "vendor.yml"} <= included
    assert "code-block:: python" not in page  # all Python code is included
    assert re.search(r"literalinclude:: driver.py\n   :linenos:", page)


async def test_expose_writes_the_frame_and_the_vendor_header(tut, camera):
    assert camera.connected
    assert (camera.limits.width, camera.limits.height) == (64, 48)
    exposure = await camera.expose(0.2, write=True)
    path = Path(exposure.filename)
    assert path.name == "cam1-0001.fits"
    with fits.open(path, checksum=True) as hdul:
        header, data = hdul[0].header, hdul[0].data
        assert hdul[0].verify_checksum() == 1
    assert header["CAMNAME"] == "cam1" and header["CAMUID"] == "VL-1001"
    assert header["VCAM"] == "1.0.0"
    assert header["CAMMODEL"] == "VL-600" and header["FIRMWARE"] == "2.1.7"
    assert header["IMAGETYP"] == "object" and header["EXPTIME"] == 0.2
    assert header["CCD-TEMP"] == pytest.approx(20.0, abs=0.01)
    assert (header["XBINNING"], header["YBINNING"]) == (1, 1)
    assert data.shape == (48, 64)
    hot_x, hot_y = tut.vendorlib.HOT_PIXEL
    assert data[hot_y, hot_x] == 65535
    data[hot_y, hot_x] = 0
    assert np.count_nonzero(data == round(sky(0.2, lib=tut.vendorlib))) == 48 * 64 - 1


async def test_dark_and_bias_frames_keep_the_shutter_closed(tut, camera):
    dark = await camera.dark(0.5)
    assert np.median(dark.data) == round(sky(0.5, dark=True, lib=tut.vendorlib))
    bias = await camera.bias()
    assert bias.exptime == 0.0
    assert np.median(bias.data) == tut.vendorlib.BIAS
    flat = await camera.flat(0.1)
    assert np.median(flat.data) == round(sky(0.1, lib=tut.vendorlib))


async def test_binning_and_image_area(tut, camera):
    lib = camera.lib
    assert await camera.set_binning(2) == (2, 2)
    exposure = await camera.expose(0.1, write=True)
    assert exposure.data.shape == (24, 32)
    assert np.median(exposure.data) == round(sky(0.1, 4, lib=tut.vendorlib))
    assert fits.getheader(exposure.filename)["XBINNING"] == 2

    # camera_core's 1-based inclusive area is the SDK's 0-based origin and size.
    assert await camera.set_image_area((5, 20, 10, 30)) == (5, 20, 10, 30)
    assert lib.vl_get_roi(camera.handle) == (tut.vendorlib.VL_OK, (4, 9, 16, 21))
    exposure = await camera.expose(0.1)
    assert exposure.data.shape == (10, 8)
    hot_x, hot_y = tut.vendorlib.HOT_PIXEL  # at (6, 11) inside the area
    assert exposure.data[(hot_y - 9) // 2, (hot_x - 4) // 2] == 65535
    assert np.count_nonzero(exposure.data == 65535) == 1

    assert await camera.set_image_area(None) == (1, 64, 1, 48)
    with pytest.raises(CameraError, match="Horizontal binning"):
        await camera.set_binning(5)  # over the sensor's maximum, 4
    assert await camera.get_binning() == (2, 2)


async def test_cooler_reaches_its_set_point(camera):
    assert await camera.set_temperature(-10.0, timeout=5) is True
    status = await camera.cooler_status()
    assert status["ccd_temp"] == pytest.approx(-10.0, abs=0.5)
    assert status["set_point"] == -10.0 and status["reached"] is True
    assert status["cooler_power"] > 0
    assert await camera.set_temperature(0.0, timeout=5) is True  # 0 °C is valid
    assert await camera.get_temperature() == pytest.approx(0.0, abs=0.5)
    with pytest.raises(CameraError, match="outside the camera range"):
        await camera.set_temperature(-60.0)  # the SDK's range is [-50, 30] °C
    exposure = await camera.expose(0.0)
    assert exposure.camera.frame_state["ccd_temp"] == pytest.approx(0.0, abs=0.5)


async def test_sdk_error_codes_become_clear_errors(tut, camera, tmp_path):
    lib = camera.lib
    lib.fail_next("vl_read_frame", tut.vendorlib.VL_ERR_TIMEOUT)
    with pytest.raises(ExposureError, match="could not read the frame: timed out"):
        await camera.expose(0.1)
    assert (await camera.expose(0.0)).data.shape == (48, 64)  # and it recovers

    lib.fail_next("vl_open", tut.vendorlib.VL_ERR_BUSY)
    system = camera.camera_system
    with pytest.raises(CameraConnectionError, match="open camera VL-1002: device busy"):
        await system.add_camera(name="cam2", uid="VL-1002")
    second = system.get_camera("cam2")
    assert second.connected is False
    await second.connect()
    assert second.connected is True


async def test_abort_releases_the_blocked_sdk_call(camera):
    listener = EventListener()
    camera.camera_system.notifier.register_listener(listener)
    task = asyncio.create_task(camera.expose(30.0))
    try:
        assert await listener.wait_for(CameraEvent.EXPOSURE_INTEGRATING, timeout=5)
        start = asyncio.get_running_loop().time()
        assert await camera.abort() is True
        with pytest.raises(ExposureAborted):
            await asyncio.wait_for(task, 5)
        assert asyncio.get_running_loop().time() - start < 2.0
    finally:
        task.cancel()
        await listener.stop_listening()
    # The SDK is free again: vl_wait_exposure returned when vl_abort was called.
    assert (await camera.expose(0.0)).data.shape == (48, 64)


async def test_blocking_sdk_calls_leave_the_event_loop_free(tut, tmp_path):
    system = tut.driver.VendorCameraSystem(
        tut.driver.VendorCamera, camera_config=system_config(tmp_path)
    )
    system.lib.open_time = 0.8
    system.lib.readout_time = 0.8
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    started, done = asyncio.Event(), asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        started.set()
        while not done.is_set():
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()

    tick = asyncio.create_task(ticker())
    await started.wait()
    try:
        camera = await system.add_camera(name="cam1")  # vl_open blocks 0.8 s
        await camera.expose(0.3)  # vl_wait_exposure and vl_read_frame block
    finally:
        done.set()
        await tick
        await system.disconnect()
    assert len(gaps) > 50
    # Any SDK call made on the loop would stall it for 0.3 s or more.
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.3f} s"


def seen(listener: EventListener, event: CameraEvent, name: str) -> asyncio.Event:
    """An event set once ``listener`` sees ``event`` for the camera ``name``."""
    flag = asyncio.Event()

    def check(received, payload) -> None:
        if received is event and payload.get("name") == name:
            flag.set()

    listener.register_callback(check)
    return flag


async def test_unplugged_camera_is_lost_and_reconnects(tut, camera):
    system = camera.camera_system
    listener = EventListener()
    system.notifier.register_listener(listener)
    try:
        await system.start_camera_poller(interval=0.05)
        task = asyncio.create_task(camera.expose(10.0))
        assert await listener.wait_for(CameraEvent.EXPOSURE_INTEGRATING, timeout=5)
        lost = seen(listener, CameraEvent.CAMERA_DISCONNECTED, "cam1")
        system.lib.unplug("VL-1001")
        with pytest.raises(ExposureError, match="no such device"):
            await asyncio.wait_for(task, 5)
        assert camera.connected is False
        await asyncio.wait_for(lost.wait(), 5)

        back = seen(listener, CameraEvent.CAMERA_CONNECTED, "cam1")
        system.lib.replug("VL-1001")
        await asyncio.wait_for(back.wait(), 5)
        again = system.get_camera("cam1")
        assert again.connected is True
        assert (await again.expose(0.0)).data.shape == (48, 64)
    finally:
        await listener.stop_listening()


async def test_example_script(tut, tmp_path, monkeypatch, capsys):
    fast = tut.vendorlib.VendorLibrary(cooling_rate=200.0)
    monkeypatch.setattr(tut.vendorlib, "load_library", lambda: fast)
    await tut.example.main(str(tmp_path))
    out = capsys.readouterr().out
    assert "available: ['VL-1001', 'VL-1002']" in out
    assert "binning: (2, 2)" in out
    assert "set point reached: True" in out
    assert f"wrote {tmp_path / 'cam1-0001.fits'} shape (24, 32)" in out
    with fits.open(tmp_path / "cam1-0001.fits") as hdul:
        assert hdul[0].header["CCD-TEMP"] == pytest.approx(-10.0, abs=0.5)
        assert hdul[0].header["EXPTIME"] == 1.0


def actor_config(tmp_path: Path) -> dict:
    """The tutorial's vendor.yml, writing under tmp_path and polling fast."""
    config = yaml.safe_load((TUTORIAL / "vendor.yml").read_text())
    for name, entry in config["cameras"].items():
        entry["image_namer"]["dirname"] = str(tmp_path / name)
        entry["spool_dir"] = str(tmp_path / "spool")
        entry["temperature_poll_interval"] = 0.02
    return config


async def wait_connected(system, names: set[str]) -> None:
    listener = EventListener()
    system.notifier.register_listener(listener)
    try:
        async with asyncio.timeout(10):
            while {c.name for c in system.cameras if c.connected} != names:
                await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=0.5)
    finally:
        await listener.stop_listening()


async def test_driver_through_the_actor(tut, tmp_path, client):
    name = f"vendorcam_{uuid.uuid4().hex[:8]}"
    actor = tut.serve.make_actor(actor_config(tmp_path), name=name, **BROKER)
    actor.camera_system.lib.cooling_rate = 200.0
    actor.poll_interval = 0.1
    await actor.start()
    try:
        await wait_connected(actor.camera_system, {"cam1", "cam2"})

        command = await send(client, actor, "capabilities cam1")
        assert command.status.did_succeed
        (caps,) = keywords(command, "capabilities")
        assert caps["cooler"] and caps["image_area"] and caps["exposure_type"]
        assert not caps["shutter"] and not caps["gain"]
        assert caps["limits"]["max_binning"] == [4, 4]

        command = await send(client, actor, "gain cam1")  # no GainMixIn
        assert command.status.did_fail

        command = await send(client, actor, "binning cam1 2")
        assert command.status.did_succeed
        assert keywords(command, "binning")[-1] == {
            "camera": "cam1",
            "horizontal": 2,
            "vertical": 2,
        }

        command = await send(client, actor, "temperature cam1 -5")
        assert command.status.did_succeed
        final = keywords(command, "temperature")[-1]
        assert final["reached"] is True
        assert final["ccd_temp"] == pytest.approx(-5.0, abs=0.5)

        command = await send(client, actor, "expose cam1 0.2 --dark")
        assert command.status.did_succeed, command.replies
        (written,) = keywords(command, "filename")
        assert Path(written["path"]) == tmp_path / "cam1" / "cam1-0001.fits"
        with fits.open(written["path"], checksum=True) as hdul:
            header, data = hdul[0].header, hdul[0].data
        assert header["IMAGETYP"] == "dark" and header["XBINNING"] == 2
        assert header["CCD-TEMP"] == pytest.approx(-5.0, abs=0.5)
        expected = round(sky(0.2, 4, dark=True, lib=tut.vendorlib))
        assert data.shape == (24, 32) and np.median(data) == expected

        command = await send(client, actor, "status cam1")
        (status,) = keywords(command, "status")
        assert status["device"]["model"] == "VL-600"
        assert status["device"]["sdk"] == "VendorLib 2.1.7"
    finally:
        await actor.stop()


async def test_serve_main_runs_until_cancelled(tut, tmp_path, client):
    name = f"vendorcam_{uuid.uuid4().hex[:8]}"
    task = asyncio.create_task(tut.serve.main(actor_config(tmp_path), name, **BROKER))
    try:
        async with asyncio.timeout(20):  # until the actor's queue exists
            command = await client.send_command(name, "ping", time_limit=1)
            while not command.status.did_succeed:
                assert not task.done(), task
                command = await client.send_command(name, "ping", time_limit=1)
        assert keywords(command, "text") == ["Pong."]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    assert task.cancelled()
