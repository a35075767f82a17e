"""The basecam getting-started example runs with only its import changed."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fakes import FakeLib

from camera_core import CameraEvent, EventListener

DATA = Path(__file__).parent / "data"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch):
    fake = FakeLib()
    lib = types.ModuleType("lib")
    lib.cameras = fake.cameras
    lib.open = fake.open
    monkeypatch.setitem(sys.modules, "lib", lib)
    spec = importlib.util.spec_from_file_location(
        "getting_started_camera", DATA / "getting_started_camera.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_getting_started_example(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    camera_system = example.MyCameraSystem(example.MyCamera)
    camera = await camera_system.add_camera(
        name="my_camera", uid="S12345", autoconnect=True
    )
    assert camera.connected is True
    assert (camera.name, camera.uid) == ("my_camera", "S12345")

    exposure = await camera.expose(1)
    await exposure.write()
    # The documented default namer is '{camera.name}-{num:04d}.fits'.
    assert exposure.filename == "my_camera-0001.fits"
    with fits.open(tmp_path / exposure.filename, checksum=True) as hdul:
        assert hdul[0].header["CAMNAME"] == "my_camera"
        assert hdul[0].header["CAMUID"] == "S12345"
        assert hdul[0].header["VCAM"] == "0.0.0"
        assert hdul[0].header["EXPTIME"] == 1.0
        assert np.all(hdul[0].data == 1)
    await camera_system.disconnect()


async def test_getting_started_config_and_poller(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opened = []
    lib = sys.modules["lib"]
    original = lib.open

    def open_with_port(uid, port=None):
        opened.append((uid, port))
        return original(uid)

    lib.open = open_with_port

    class PortCamera(example.MyCamera):
        async def _connect_internal(self, uid, port):
            self.device = lib.open(uid, port)

    config = {
        "cameras": {
            "my_camera": {
                "uid": "S12345",
                "connection_params": {"uid": "S12345", "port": "/dev/cam1"},
            }
        }
    }
    camera_system = example.MyCameraSystem(PortCamera, camera_config=config)
    listener = EventListener()
    camera_system.notifier.register_listener(listener)
    await camera_system.start_camera_poller(interval=0.05)
    assert await listener.wait_for(CameraEvent.CAMERA_CONNECTED, timeout=5)
    camera = camera_system.get_camera("my_camera")
    assert camera.camera_config["connection_params"]["port"] == "/dev/cam1"
    assert opened == [("S12345", "/dev/cam1")]

    # The camera disappears from the vendor list: the poller removes it.
    lib.cameras.clear()
    assert await listener.wait_for(CameraEvent.CAMERA_DISCONNECTED, timeout=5)
    assert camera_system.get_camera("my_camera") is False
    await camera_system.disconnect()
    await listener.stop_listening()
