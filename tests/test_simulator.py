"""Tests for the simulated camera system, camera and fault injection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camera_core.exceptions import (
    CameraConnectionError,
    CameraError,
    ExposureError,
    ExposureTimeout,
    ExposureWriteError,
)
from camera_core.simulator import SimulatedCamera, SimulatedCameraSystem

pytestmark = pytest.mark.asyncio


def make_config(tmp_path: Path, **sim1: Any) -> dict[str, Any]:
    common = {
        "autoconnect": True,
        "spool_dir": str(tmp_path / "spool"),
        "write_backoff": 0.001,
        "exposure_timeout_margin": 5.0,
        "temperature_poll_interval": 0.5,
        "image_namer": {
            "basename": "{camera.name}-{num:04d}.fits",
            "dirname": str(tmp_path / "data"),
        },
    }
    return {
        "simulator": {
            "width": 64,
            "height": 48,
            "time_factor": 0.01,
            "readout_time": 1.0,
            "flush_time": 0.1,
        },
        "cameras": {
            "sim1": {**common, "uid": "SIM-0001", "simulator": sim1},
            "sim2": {**common, "uid": "SIM-0002", "simulator": {"width": 32}},
            "real": {"uid": "REAL-1", "simulator": False},
        },
    }


@pytest.fixture
async def system(tmp_path: Path):
    system = SimulatedCameraSystem(SimulatedCamera, camera_config=make_config(tmp_path))
    yield system
    await system.disconnect()


@pytest.fixture
async def camera(system: SimulatedCameraSystem) -> SimulatedCamera:
    return await system.add_camera(name="sim1")


async def test_list_available_cameras(system: SimulatedCameraSystem) -> None:
    assert system.list_available_cameras() == ["SIM-0001", "SIM-0002"]


async def test_connect_sets_limits(camera: SimulatedCamera) -> None:
    assert camera.connected
    assert camera.time_factor == 0.01
    limits = camera.limits
    assert (limits.width, limits.height) == (64, 48)
    assert limits.max_binning == (4, 4)
    assert limits.gains == [1.0, 1.5, 3.0]
    assert limits.readout_modes == ["normal", "fast"]
    assert camera.capabilities["stop"] is True
    status = camera.get_status(update=True)
    for key in ("temperature", "cooler_power", "set_point", "shutter", "binning",
                "area", "gain", "offset", "readout_mode", "model"):  # fmt: skip
        assert key in status
    assert status["area"] == [1, 64, 1, 48]
    assert status["temperature"] == pytest.approx(20.0)


async def test_per_camera_parameters(system: SimulatedCameraSystem) -> None:
    sim2 = await system.add_camera(name="sim2")
    assert (sim2.limits.width, sim2.limits.height) == (32, 48)
    exposure = await sim2.expose(0, image_type="bias")
    assert exposure.data.shape == (48, 32)


@pytest.mark.parametrize("image_type", ["bias", "dark", "flat", "object"])
async def test_expose_types(camera: SimulatedCamera, image_type: str) -> None:
    start = time.perf_counter()
    exposure = await camera.expose(5.0, image_type=image_type)
    wall = time.perf_counter() - start
    data = exposure.data
    assert data.shape == (48, 64)
    assert data.dtype == np.uint16
    if image_type == "bias":
        assert exposure.exptime == 0
        assert abs(np.median(data) - 1000) <= 2
    else:
        # 5 s + 0.1 s flush + 1 s readout, at 0.01 s per second.
        assert 0.05 < wall < 2.0
    if image_type == "flat":
        assert np.median(data) > 1000 + 10000 * 5
    if image_type == "object":
        assert data.max() > np.median(data) + 1000
    if image_type == "dark":
        # 1 e-/s at 20 °C for 5 s: ~3 ADU, and no stars behind the shutter.
        assert 1001 <= np.median(data) <= 1008
        assert np.mean(data > 1100) < 0.01


async def test_binning_and_area(camera: SimulatedCamera) -> None:
    assert await camera.set_binning(2, 2) == (2, 2)
    assert await camera.set_image_area((1, 32, 1, 16)) == (1, 32, 1, 16)
    exposure = await camera.expose(2.0, image_type="flat")
    assert exposure.data.shape == (8, 16)
    # Binning sums charge: 4 vignetted pixels of ~20000 ADU saturate.
    assert exposure.data.max() == 65535
    assert await camera.set_image_area(None) == (1, 64, 1, 48)
    await camera.set_binning(1, 3)
    exposure = await camera.expose(0.0, image_type="bias")
    assert exposure.data.shape == (16, 64)
    with pytest.raises(CameraError):
        await camera.set_binning(5, 1)
    with pytest.raises(CameraError):
        await camera.set_image_area((1, 65, 1, 48))


async def test_gain_offset_readout_mode(camera: SimulatedCamera) -> None:
    flat = (await camera.expose(0.1, image_type="flat")).data.astype(float) - 1000
    await camera.set_gain(3.0)
    assert await camera.get_gain() == 3.0
    flat3 = (await camera.expose(0.1, image_type="flat")).data.astype(float) - 1000
    assert np.mean(flat3) / np.mean(flat) == pytest.approx(0.5, rel=0.03)
    with pytest.raises(CameraError):
        await camera.set_gain(2.0)
    assert await camera.set_offset(300) == 300
    bias = (await camera.expose(0, image_type="bias")).data
    assert abs(np.median(bias) - 300) <= 2
    assert await camera.set_readout_mode("fast") == "fast"
    fast_bias = (await camera.expose(0, image_type="bias")).data.astype(float)
    assert fast_bias.std() > 1.3 * bias.astype(float).std()


async def test_shutter(camera: SimulatedCamera) -> None:
    assert await camera.get_shutter() is False
    assert await camera.open_shutter() is True
    assert camera.get_status(update=True)["shutter"] is True
    assert await camera.close_shutter() is False


async def test_cooler_reaches_set_point(camera: SimulatedCamera) -> None:
    assert await camera.get_cooler_power() == 0.0
    # 30 °C at 1 °C/s plus the exponential tail: ~40 s, 0.4 s of wall time.
    assert await camera.set_temperature(-10.0, timeout=120) is True
    assert await camera.get_temperature() == pytest.approx(-10.0, abs=0.5)
    assert 0 < await camera.get_cooler_power() < 100
    with pytest.raises(CameraError):
        await camera.set_temperature(-80.0)  # outside the limits


async def test_cooler_is_not_instant(camera: SimulatedCamera) -> None:
    with pytest.raises(CameraError, match="not reached"):
        await camera.set_temperature(-10.0, timeout=5)
    assert await camera.get_temperature() > 10.0


async def test_cooler_never_settles(camera: SimulatedCamera) -> None:
    camera.inject_fault("cooler_never_settles")
    with pytest.raises(CameraError, match="not reached"):
        await camera.set_temperature(10.0, timeout=60)
    assert await camera.get_temperature() == pytest.approx(13.0, abs=0.2)
    assert await camera.get_cooler_power() == 100.0
    camera.clear_faults("cooler_never_settles")
    assert await camera.set_temperature(10.0, timeout=60) is True


async def test_connect_failure_from_config(tmp_path: Path) -> None:
    config = make_config(tmp_path, faults={"connect_failure": {"count": 2}})
    system = SimulatedCameraSystem(SimulatedCamera, camera_config=config)
    with pytest.raises(CameraConnectionError):
        await system.add_camera(name="sim1")
    camera = system.get_camera(name="sim1")
    assert camera and not camera.connected
    with pytest.raises(CameraConnectionError):
        await camera.connect()
    await camera.connect()
    assert camera.connected
    assert "connect_failure" not in camera.faults
    await system.disconnect()


async def test_connect_failure_forever(camera: SimulatedCamera) -> None:
    await camera.disconnect()
    camera.inject_fault("connect_failure")
    for _ in range(3):
        with pytest.raises(CameraConnectionError):
            await camera.connect()
    camera.clear_faults()
    await camera.connect()


async def test_unplug_mid_exposure(
    system: SimulatedCameraSystem, camera: SimulatedCamera
) -> None:
    camera.inject_fault("unplug", after=0.5)
    start = time.perf_counter()
    with pytest.raises(ExposureError) as info:
        await camera.expose(10.0)
    assert isinstance(info.value.__cause__, CameraConnectionError)
    assert 0.04 < time.perf_counter() - start < 1.0  # vanished mid-integration
    assert not camera.connected
    assert "SIM-0001" not in system.list_available_cameras()
    with pytest.raises(CameraConnectionError):
        await camera.connect()
    camera.replug()
    assert "unplug" not in camera.faults
    assert "SIM-0001" in system.list_available_cameras()
    await camera.connect()
    assert (await camera.expose(0.1)).data.shape == (48, 64)


async def test_unplug_seen_by_poller(
    system: SimulatedCameraSystem, camera: SimulatedCamera
) -> None:
    camera.inject_fault("unplug", after=0.0)
    await system.start_camera_poller(interval=0.02)
    with pytest.raises(ExposureError):
        await camera.expose(1.0)
    for _ in range(100):
        if not system.get_camera(uid="SIM-0001"):
            break
        await asyncio.sleep(0.01)
    assert not system.get_camera(uid="SIM-0001")
    camera.clear_faults("unplug")
    for _ in range(100):
        new = system.get_camera(uid="SIM-0001")
        if new and new.connected:
            break
        await asyncio.sleep(0.01)
    assert new and new.connected and new is not camera


async def test_readout_timeout(tmp_path: Path) -> None:
    config = make_config(tmp_path, faults={"readout_timeout": {}})
    config["cameras"]["sim1"]["exposure_timeout_margin"] = 0.3
    system = SimulatedCameraSystem(SimulatedCamera, camera_config=config)
    camera = await system.add_camera(name="sim1")
    start = time.perf_counter()
    with pytest.raises(ExposureTimeout):
        await camera.expose(1.0)
    # 1 s at time_factor 0.01 (10 ms of wall time) + the 0.3 s wall-clock margin.
    assert 0.3 <= time.perf_counter() - start < 1.0
    assert not camera.exposing
    camera.clear_faults("readout_timeout")
    assert (await camera.expose(1.0, timeout_margin=5.0)).data.shape == (48, 64)
    await system.disconnect()


async def test_write_failure_retried(camera: SimulatedCamera, tmp_path: Path) -> None:
    camera.inject_fault("write_failure", errno="ENOSPC", count=1)
    exposure = await camera.expose(0.1, write=True)
    result = exposure.write_result
    assert result is not None and not result.spooled
    assert result.attempts == 2
    assert Path(result.path).exists()
    assert "write_failure" not in camera.faults
    assert camera.write_fault is None


async def test_write_failure_spools(camera: SimulatedCamera, tmp_path: Path) -> None:
    camera.inject_fault("write_failure")
    exposure = await camera.expose(0.1, write=True)
    result = exposure.write_result
    assert result.spooled
    assert "Read-only" in result.error or "EROFS" in result.error
    assert Path(result.path).is_relative_to(tmp_path / "spool")
    assert not (tmp_path / "data" / "sim1-0001.fits").exists()


async def test_write_failure_including_spool(camera: SimulatedCamera) -> None:
    camera.inject_fault("write_failure", include_spool=True)
    exposure = await camera.expose(0.1)
    with pytest.raises(ExposureWriteError):
        await exposure.write()
    assert exposure.data is not None
    camera.clear_faults("write_failure")
    await exposure.write()
    assert not exposure.write_result.spooled


async def test_fault_api_validation(camera: SimulatedCamera) -> None:
    with pytest.raises(ValueError, match="connect_failure"):
        camera.inject_fault("gremlins")
    with pytest.raises(ValueError, match="count"):
        camera.inject_fault("connect_failure", times=2)
    with pytest.raises(ValueError, match="errno"):
        camera.inject_fault("write_failure", errno="ENOTANERROR")
    camera.inject_fault("readout_timeout", count=1)
    faults = camera.faults
    assert dict(faults["readout_timeout"]) == {"count": 1}
    with pytest.raises(TypeError):
        faults["unplug"] = {}  # type: ignore[index]
    camera.clear_faults()
    assert dict(camera.faults) == {}


async def test_default_config() -> None:
    etc = Path(__file__).parent.parent / "etc" / "camactor.yml"
    system = SimulatedCameraSystem(SimulatedCamera, camera_config=etc)
    assert system.config["actor"]["name"] == "camactor"
    assert system.list_available_cameras() == ["SIM-0001", "SIM-0002"]
    sim2 = await system.add_camera(name="sim2")
    assert sim2.connected and sim2.uid == "SIM-0002"
    assert (sim2.limits.width, sim2.limits.height) == (1024, 1024)
    assert sim2.limits.max_binning == (2, 2)
    sim2.time_factor = 0.01
    exposure = await sim2.expose(0, image_type="bias")
    assert exposure.data.shape == (1024, 1024)
    await system.disconnect()


async def test_unknown_simulator_key(tmp_path: Path) -> None:
    # Refused when the system is built, not later when the poller adds it.
    with pytest.raises(ValueError, match=r"Camera 'sim1': simulator: .*'widht'"):
        SimulatedCameraSystem(
            SimulatedCamera, camera_config=make_config(tmp_path, widht=10)
        )


async def test_stop_and_abort(camera: SimulatedCamera) -> None:
    task = asyncio.create_task(camera.expose(100.0))
    await asyncio.sleep(0.1)
    await camera.stop()
    exposure = await task
    assert exposure.exptime < 50
    assert exposure.data.shape == (48, 64)

    task = asyncio.create_task(camera.expose(100.0))
    await asyncio.sleep(0.1)
    assert await camera.abort() is True
    with pytest.raises(ExposureError):
        await task
    assert not camera.exposing
