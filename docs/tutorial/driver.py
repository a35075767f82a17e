"""A camera_core driver for the VendorLib cameras (the tutorial's driver).

`VendorCameraSystem` finds the cameras; `VendorCamera` wraps one of them, with
a cooler, binning, an image area and exposure types. The SDK, ``vendorlib``,
is a C-style library: handles, error codes and blocking calls.
"""

from __future__ import annotations

from typing import Any

import vendorlib

from camera_core import (
    BaseCamera,
    CameraConnectionError,
    CameraError,
    CameraEvent,
    CameraSystem,
    Card,
    CoolerMixIn,
    ExposureTypeMixIn,
    Extension,
    FITSModel,
    HeaderModel,
    ImageAreaMixIn,
    basic_header_model,
)
from camera_core.utils import run_in_executor

__all__ = ["VendorCamera", "VendorCameraSystem"]

#: The basic header plus the camera's model and its state as the frame started.
VENDOR_HEADER = HeaderModel(
    [
        *basic_header_model,
        Card("CAMMODEL", "{__camera__.info.model}", "Camera model"),
        Card("FIRMWARE", "{__camera__.info.firmware}", "Firmware version"),
        Card("CCD-TEMP", "{__camera__.frame_state['ccd_temp']}", "CCD temp. [C]"),
        Card("XBINNING", "{__camera__.frame_state['binning'][0]}", "Binning in x"),
        Card("YBINNING", "{__camera__.frame_state['binning'][1]}", "Binning in y"),
    ]
)


class VendorCameraSystem(CameraSystem):
    """The VendorLib cameras plugged into this computer."""

    __version__ = "1.0.0"

    def setup(self) -> VendorCameraSystem:
        """Loads the SDK, once for all the cameras."""
        self.lib = vendorlib.load_library()
        return self

    def list_available_cameras(self) -> list[str]:
        """The serial numbers of the cameras plugged in."""
        return self.lib.vl_list_devices()


class VendorCamera(CoolerMixIn, ImageAreaMixIn, ExposureTypeMixIn, BaseCamera):
    """A VendorLib camera."""

    __version__ = "1.0.0"
    fits_model = FITSModel([Extension(data="raw", header_model=VENDOR_HEADER)])

    handle: int | None = None

    @property
    def lib(self) -> vendorlib.VendorLibrary:
        """The SDK, loaded by the camera system."""
        return self.camera_system.lib

    def _check(self, result: int | tuple[int, Any], doing: str) -> Any:
        """Turns an SDK error code into an exception; returns the value, if any."""
        code, value = result if isinstance(result, tuple) else (result, None)
        if code == vendorlib.VL_OK:
            return value
        error = f"{self.name} could not {doing}: {self.lib.vl_error_text(code)}."
        if code == vendorlib.VL_ERR_NO_DEVICE:
            self.connection_lost(error)  # the poller reconnects it when it is back
            raise CameraConnectionError(error)
        raise CameraError(error)

    # Connection.

    async def _connect_internal(self, uid: str, **params: Any) -> None:
        # vl_open blocks while it uploads the firmware: run it in an executor.
        result = await run_in_executor(self.lib.vl_open, uid)
        self.handle = self._check(result, f"open camera {uid}")
        info = self._check(self.lib.vl_get_info(self.handle), "read its sensor")
        self.info = info
        self.frame_state = {"ccd_temp": None, "binning": (1, 1)}  # see expose
        self.limits.update(
            width=info.width,
            height=info.height,
            max_binning=(info.max_binning, info.max_binning),
            exptime_min=0.0,
            exptime_max=info.max_exptime,
            temperature_min=info.min_set_point,
            temperature_max=info.max_set_point,
            pixel_size=(info.pixel_size, info.pixel_size),
        )

    async def _disconnect_internal(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            code = self.lib.vl_close(handle)
            if code != vendorlib.VL_ERR_NO_DEVICE:  # unplugged: nothing to close
                self._check(code, "close the camera")

    def _status_internal(self) -> dict[str, Any]:
        return {
            "model": self.info.model,
            "serial": self.info.serial,
            "firmware": self.info.firmware,
            "sdk": self.lib.vl_version(),
        }

    # Exposing.

    async def _expose_internal(self, exposure: Any, **kwargs: Any) -> Any:
        lib, handle = self.lib, self.handle
        self.frame_state = {  # for the header, evaluated when the frame is read
            "ccd_temp": await self.get_temperature(),
            "binning": await self.get_binning(),
        }
        dark = not exposure.shutter_open  # bias and dark frames
        self._check(lib.vl_start_exposure(handle, exposure.exptime, dark), "expose")
        self._notify(CameraEvent.EXPOSURE_INTEGRATING)
        # Blocking calls go to an executor; _abort_internal unblocks them.
        wait_ms = int(exposure.exptime * 1000) + 10_000
        result = await run_in_executor(lib.vl_wait_exposure, handle, wait_ms)
        self._check(result, "finish the exposure")
        self._notify(CameraEvent.EXPOSURE_READING)
        result = await run_in_executor(lib.vl_read_frame, handle)
        exposure.data = self._check(result, "read the frame")
        return exposure

    async def _abort_internal(self) -> None:
        code = self.lib.vl_abort(self.handle)
        if code != vendorlib.VL_ERR_NOT_EXPOSING:  # already over: nothing to do
            self._check(code, "abort the exposure")

    # Cooler (CoolerMixIn).

    async def _get_temperature_internal(self) -> float:
        return self._check(self.lib.vl_get_temperature(self.handle), "read the CCD")

    async def _set_temperature_internal(self, temperature: float) -> None:
        result = self.lib.vl_set_cooler(self.handle, True, temperature)
        self._check(result, f"set the cooler to {temperature} °C")

    async def _get_cooler_power_internal(self) -> float:
        return self._check(self.lib.vl_get_cooler_power(self.handle), "read power")

    # Binning and image area (ImageAreaMixIn).

    async def _get_binning_internal(self) -> tuple[int, int]:
        return self._check(self.lib.vl_get_binning(self.handle), "read the binning")

    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        result = self.lib.vl_set_binning(self.handle, hbin, vbin)
        self._check(result, f"bin {hbin}x{vbin}")

    async def _get_image_area_internal(self) -> tuple[int, int, int, int]:
        # The SDK: 0-based origin and size. camera_core: 1-based, inclusive.
        x, y, width, height = self._check(self.lib.vl_get_roi(self.handle), "read")
        return (x + 1, x + width, y + 1, y + height)

    async def _set_image_area_internal(
        self, area: tuple[int, int, int, int] | None = None
    ) -> None:
        if area is None:  # the full frame
            area = (1, self.info.width, 1, self.info.height)
        x0, x1, y0, y1 = area
        width, height = x1 - x0 + 1, y1 - y0 + 1
        result = self.lib.vl_set_roi(self.handle, x0 - 1, y0 - 1, width, height)
        self._check(result, f"set the image area to {area}")
