"""A tiny fake vendor library and a camera written against it."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from camera_core import (
    BaseCamera,
    CameraConnectionError,
    CameraEvent,
    CameraSystem,
    CoolerMixIn,
    ExposureTypeMixIn,
    ImageAreaMixIn,
    ShutterMixIn,
)


class FakeDevice:
    """A blocking 'vendor SDK' device, like the getting-started ``lib``."""

    def __init__(self, uid: str, shape: tuple[int, int] = (32, 48)) -> None:
        self.uid = uid
        self.shape = shape
        self.exptime = None
        self.frames = 0

    def expose(self, exptime: float) -> None:
        self.exptime = exptime
        time.sleep(min(exptime, 0.05))

    def read_frame(self) -> np.ndarray:
        self.frames += 1
        value = self.frames
        return np.full(self.shape, value, dtype=np.uint16)


class FakeLib:
    """The module-like vendor library of the getting-started example."""

    def __init__(self) -> None:
        self.cameras = ["S12345"]
        self.fail_connect = False

    def open(self, uid: str, port: str | None = None) -> FakeDevice:
        if self.fail_connect:
            raise CameraConnectionError(f"cannot open {uid}")
        return FakeDevice(uid)


class TestSystem(CameraSystem):
    """A camera system over a FakeLib given as ``lib``."""

    __test__ = False

    def __init__(self, *args, lib: FakeLib, **kwargs) -> None:
        self.lib = lib
        super().__init__(*args, **kwargs)

    def list_available_cameras(self) -> list[str]:
        return list(self.lib.cameras)


class IntegratingCamera(
    CoolerMixIn, ShutterMixIn, ImageAreaMixIn, ExposureTypeMixIn, BaseCamera
):
    """A test camera that integrates with `_integrate`, so stop/abort work."""

    __version__ = "1.2.3"
    can_stop = True

    async def _connect_internal(self, **params) -> None:
        if self.camera_system.lib.fail_connect:
            raise CameraConnectionError("device did not answer")
        self.temp = 20.0
        self.target = 20.0
        self.shutter = False
        self.binning = (1, 1)
        self.area = (1, 48, 1, 32)
        self.hang_readout = False
        self.readout_time = 0.0
        self.frame_values: list[int] | None = None
        self.frames_read = 0
        self.hooks: list[str] = []
        self.limits.update(width=48, height=32, max_binning=(4, 4))

    async def _abort_internal(self) -> None:
        self.hooks.append("abort")

    async def _stop_internal(self) -> None:
        self.hooks.append("stop")

    async def _expose_internal(self, exposure, **kwargs) -> None:
        await self._integrate(exposure)
        self._notify(CameraEvent.EXPOSURE_READING)
        if self.hang_readout:
            await asyncio.Event().wait()
        if self.readout_time:
            await asyncio.sleep(self.readout_time)
        x0, x1, y0, y1 = self.area
        value = 100 if exposure.shutter_open else 10
        if self.frame_values is not None:
            value = self.frame_values[self.frames_read % len(self.frame_values)]
        self.frames_read += 1
        shape = ((y1 - y0 + 1) // self.binning[1], (x1 - x0 + 1) // self.binning[0])
        exposure.data = np.full(shape, value, dtype=np.uint16)

    async def _get_temperature_internal(self) -> float:
        # Approaches the target by 40 % of the difference per reading.
        self.temp += 0.4 * (self.target - self.temp)
        return self.temp

    async def _set_temperature_internal(self, temperature: float) -> None:
        self.target = temperature

    async def _get_shutter_internal(self) -> bool:
        return self.shutter

    async def _set_shutter_internal(self, shutter_open: bool) -> None:
        self.shutter = shutter_open

    async def _get_binning_internal(self):
        return self.binning

    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        self.binning = (hbin, vbin)

    async def _get_image_area_internal(self):
        return self.area

    async def _set_image_area_internal(self, area=None) -> None:
        self.area = (1, 48, 1, 32) if area is None else area


def open_verified(path):
    """Opens a FITS file, failing (not warning) on a bad DATASUM/CHECKSUM."""
    import warnings

    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hdul = fits.open(path, checksum=True, disable_image_compression=True)
        for hdu in hdul:
            assert "CHECKSUM" in hdu.header, f"{path}: HDU without CHECKSUM"
        hdul.close()
    return fits.open(path)
