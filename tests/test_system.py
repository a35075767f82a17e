"""Camera system: configuration, include/exclude, poller and reconnection."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeLib, IntegratingCamera, TestSystem

from camera_core import CameraError, CameraEvent, EventListener, ExposureAborted


def config(**extra) -> dict:
    return {"cameras": {"cam1": {"uid": "S12345", **extra}}}


async def test_bad_image_namer_fails_when_system_is_built():
    with pytest.raises(CameraError, match="invalid image_namer"):
        TestSystem(
            IntegratingCamera,
            camera_config=config(
                image_namer={"basename": "{__import__('os').system('id')}-{num}.fits"}
            ),
            lib=FakeLib(),
        )
    with pytest.raises(CameraError, match="num"):
        TestSystem(
            IntegratingCamera,
            camera_config=config(image_namer={"basename": "frame.fits"}),
            lib=FakeLib(),
        )


async def test_include_and_exclude(tmp_path):
    lib = FakeLib()
    lib.cameras[:] = ["S12345", "OTHER"]
    system = TestSystem(
        IntegratingCamera, camera_config=config(), lib=lib, exclude=["OTHER"]
    )
    await system.start_camera_poller(0.02)
    listener = EventListener()
    system.notifier.register_listener(listener)
    assert await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=5)
    await asyncio.sleep(0.1)
    assert [c.uid for c in system.cameras] == ["S12345"]
    assert system.get_camera().name == "cam1"  # the only camera
    with pytest.raises(CameraError, match="excluded"):
        await system.add_camera(uid="OTHER")
    await system.disconnect()
    await listener.stop_listening()


async def test_connect_failure_then_poller_retries():
    lib = FakeLib()
    lib.fail_connect = True
    system = TestSystem(IntegratingCamera, camera_config=config(), lib=lib)
    listener = EventListener()
    system.notifier.register_listener(listener)
    await system.start_camera_poller(0.02)
    assert await listener.wait_for(CameraEvent.CAMERA_CONNECT_FAILED, timeout=5)
    camera = system.get_camera("cam1")
    assert camera and camera.connected is False  # listed, disconnected
    lib.fail_connect = False
    assert await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=5)
    assert camera.connected is True
    await system.disconnect()
    await listener.stop_listening()


async def test_connection_lost_then_reconnected(camera):
    system = camera.camera_system
    listener = EventListener()
    system.notifier.register_listener(listener)
    lost = asyncio.create_task(
        listener.wait_for(CameraEvent.CAMERA_DISCONNECTED, timeout=1)
    )
    await asyncio.sleep(0)
    camera.connection_lost("cable pulled")
    assert camera.connected is False
    assert await lost
    with pytest.raises(CameraError, match="not connected"):
        await camera.expose(0.0)
    await system.start_camera_poller(0.02)
    assert await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=5)
    assert (await camera.expose(0.0)).data is not None
    await listener.stop_listening()


async def test_remove_camera_aborts_exposure(camera):
    task = asyncio.create_task(camera.expose(30))
    await asyncio.sleep(0.05)
    await camera.camera_system.remove_camera(name="cam1")
    with pytest.raises(ExposureAborted):
        await task
    assert camera.camera_system.get_camera("cam1") is False
    assert camera.connected is False


async def test_config_from_yaml_file(tmp_path):
    path = tmp_path / "cams.yml"
    path.write_text("cameras:\n  cam1:\n    uid: S12345\n    autoconnect: false\n")
    system = TestSystem(IntegratingCamera, camera_config=path, lib=FakeLib())
    camera = await system.add_camera(name="cam1")
    assert camera.connected is False
    assert system.get_camera_config(uid="S12345")["name"] == "cam1"
    bad = tmp_path / "bad.yml"
    bad.write_text("cameras: [unclosed\n")
    with pytest.raises(CameraError, match="Invalid YAML"):
        TestSystem(IntegratingCamera, camera_config=bad, lib=FakeLib())
