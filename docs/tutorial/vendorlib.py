"""vendorlib: the SDK of the made-up VendorLib cameras, simulated in Python.

It stands in for the Python binding of a vendor's C library, the kind that
``ctypes`` or ``cffi`` gives you. The API has:

- Integer device handles from `VendorLibrary.vl_open`.
- Integer error codes instead of exceptions (`VL_OK` is 0, errors are negative;
  `VendorLibrary.vl_error_text` explains them). Getters return ``(code, value)``.
- Blocking calls: `VendorLibrary.vl_open` (firmware upload),
  `VendorLibrary.vl_wait_exposure` (the integration) and
  `VendorLibrary.vl_read_frame` (the readout) block the calling thread, so a
  driver runs them in an executor. `VendorLibrary.vl_abort`, called from
  another thread, makes them return `VL_ERR_ABORTED` at once.
- A regulated cooler, binning and a region of interest (0-based origin and
  size, in unbinned pixels).

`load_library` plays the part of ``ctypes.CDLL("libvendor.so")``. Each call
returns a library with its own simulated devices. The attributes and methods
without a ``vl_`` prefix are simulation knobs that a real SDK would not have:
tests use them to speed up the cooler or to inject faults.

Frames are exact, so that tests can check pixel values: each binned pixel holds
`BIAS` plus the sum, over its unbinned pixels, of the dark current and, with
the shutter open, the sky flux (both in ADU per second), except for one hot
pixel, `HOT_PIXEL`, which is saturated.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable
from types import MappingProxyType

import numpy as np

__all__ = [
    "BIAS",
    "DARK_RATE",
    "HOT_PIXEL",
    "SKY_RATE",
    "VL_ERR_ABORTED",
    "VL_ERR_BAD_HANDLE",
    "VL_ERR_BAD_PARAM",
    "VL_ERR_BUSY",
    "VL_ERR_NOT_EXPOSING",
    "VL_ERR_NO_DEVICE",
    "VL_ERR_TIMEOUT",
    "VL_OK",
    "SensorInfo",
    "VendorLibrary",
    "load_library",
]

VL_OK = 0
VL_ERR_NO_DEVICE = -1
VL_ERR_BAD_HANDLE = -2
VL_ERR_BUSY = -3
VL_ERR_BAD_PARAM = -4
VL_ERR_TIMEOUT = -5
VL_ERR_ABORTED = -6
VL_ERR_NOT_EXPOSING = -7

_ERROR_TEXT = MappingProxyType(
    {
        VL_OK: "success",
        VL_ERR_NO_DEVICE: "no such device (unplugged?)",
        VL_ERR_BAD_HANDLE: "invalid or closed handle",
        VL_ERR_BUSY: "device busy",
        VL_ERR_BAD_PARAM: "parameter out of range",
        VL_ERR_TIMEOUT: "timed out",
        VL_ERR_ABORTED: "aborted",
        VL_ERR_NOT_EXPOSING: "no exposure in progress",
    }
)

#: Bias level of every pixel, in ADU.
BIAS = 100
#: Dark current of an unbinned pixel, in ADU per second.
DARK_RATE = 10.0
#: Sky flux on an unbinned pixel with the shutter open, in ADU per second.
SKY_RATE = 1000.0
#: A saturated (65535) pixel at this 0-based ``(x, y)`` of the sensor.
HOT_PIXEL = (10, 20)


@dataclasses.dataclass(frozen=True)
class SensorInfo:
    """What `VendorLibrary.vl_get_info` reports about a device."""

    serial: str
    model: str
    firmware: str
    width: int
    height: int
    pixel_size: float
    max_binning: int
    min_set_point: float
    max_set_point: float
    max_exptime: float


@dataclasses.dataclass
class _Exposure:
    """One exposure; ``abort`` releases the calls blocked on it."""

    start: float
    seconds: float
    dark: bool
    integrated: bool = False
    abort: threading.Event = dataclasses.field(default_factory=threading.Event)


@dataclasses.dataclass
class _Device:
    """The state of one simulated camera."""

    info: SensorInfo
    ambient: float
    target: float
    temperature: float
    handle: int | None = None
    binning: tuple[int, int] = (1, 1)
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    updated: float = 0.0
    exposure: _Exposure | None = None

    def end_exposure(self) -> None:
        """Ends the exposure in progress, releasing its blocked calls."""
        if self.exposure is not None:
            self.exposure.abort.set()
            self.exposure = None


class VendorLibrary:
    """A loaded VendorLib library with its simulated devices.

    Parameters
    ----------
    serials
        Serial numbers of the devices plugged in.
    width, height
        Sensor size in pixels.
    ambient
        Temperature of a sensor whose cooler is off, in °C.
    cooling_rate
        How fast the sensor temperature moves to its target, in °C per second.
    readout_time
        Seconds to read a full unbinned frame.
    open_time
        Seconds `vl_open` blocks (the firmware upload).
    """

    def __init__(
        self,
        serials: Iterable[str] = ("VL-1001", "VL-1002"),
        width: int = 64,
        height: int = 48,
        ambient: float = 20.0,
        cooling_rate: float = 2.0,
        readout_time: float = 0.05,
        open_time: float = 0.01,
    ) -> None:
        self.cooling_rate = cooling_rate
        self.readout_time = readout_time
        self.open_time = open_time
        self._lock = threading.Lock()
        self._next_handle = 1
        self._handles: dict[int, _Device] = {}
        self._failures: dict[str, int] = {}
        self._unplugged: set[str] = set()
        self._devices: dict[str, _Device] = {}
        for serial in serials:
            info = SensorInfo(
                serial=serial, model="VL-600", firmware="2.1.7", width=width,
                height=height, pixel_size=9.0, max_binning=4, min_set_point=-50.0,
                max_set_point=30.0, max_exptime=3600.0,
            )  # fmt: skip
            self._devices[serial] = _Device(info, ambient, ambient, ambient)

    # Simulation knobs (not part of the SDK).

    def fail_next(self, function: str, code: int) -> None:
        """Makes the next call of ``function`` (e.g. ``"vl_open"``) return ``code``."""
        self._failures[function] = code

    def unplug(self, serial: str) -> None:
        """Unplugs a device: it leaves the list and its handle stops working."""
        with self._lock:
            self._unplugged.add(serial)
            self._devices[serial].end_exposure()

    def replug(self, serial: str) -> None:
        """Plugs a device back in (its handle must be opened again)."""
        with self._lock:
            self._unplugged.discard(serial)
            device = self._devices[serial]
            self._handles.pop(device.handle, None)  # type: ignore[arg-type]
            device.handle = None

    # Internals.

    def _injected(self, function: str) -> int:
        return self._failures.pop(function, VL_OK)

    def _device(self, handle: int) -> tuple[int, _Device | None]:
        device = self._handles.get(handle)
        if device is None:
            return VL_ERR_BAD_HANDLE, None
        if device.info.serial in self._unplugged:
            return VL_ERR_NO_DEVICE, None
        return VL_OK, device

    def _update_temperature(self, device: _Device) -> float:
        now = time.monotonic()
        step = self.cooling_rate * (now - device.updated)
        delta = device.target - device.temperature
        device.temperature += max(-step, min(step, delta))
        device.updated = now
        return device.temperature

    # The SDK.

    def vl_version(self) -> str:
        """Returns the library version."""
        return "VendorLib 2.1.7"

    def vl_error_text(self, code: int) -> str:
        """Returns the description of an error code."""
        return _ERROR_TEXT.get(code, f"unknown error {code}")

    def vl_list_devices(self) -> list[str]:
        """Returns the serial numbers of the devices plugged in."""
        return [s for s in self._devices if s not in self._unplugged]

    def vl_open(self, serial: str) -> tuple[int, int]:
        """Opens a device (blocks while its firmware is uploaded)."""
        time.sleep(self.open_time)  # the simulated C call blocks its thread
        if code := self._injected("vl_open"):
            return code, 0
        with self._lock:
            device = self._devices.get(serial)
            if device is None or serial in self._unplugged:
                return VL_ERR_NO_DEVICE, 0
            if device.handle is not None:
                return VL_ERR_BUSY, 0
            handle, self._next_handle = self._next_handle, self._next_handle + 1
            device.handle = handle
            device.updated = time.monotonic()
            device.roi = (0, 0, device.info.width, device.info.height)
            device.binning = (1, 1)
            self._handles[handle] = device
            return VL_OK, handle

    def vl_close(self, handle: int) -> int:
        """Closes a handle, aborting any exposure."""
        with self._lock:
            device = self._handles.pop(handle, None)
            if device is None:
                return VL_ERR_BAD_HANDLE
            device.end_exposure()
            device.handle = None
            return VL_ERR_NO_DEVICE if device.info.serial in self._unplugged else VL_OK

    def vl_get_info(self, handle: int) -> tuple[int, SensorInfo | None]:
        """Returns the sensor information."""
        code, device = self._device(handle)
        return code, None if device is None else device.info

    def vl_set_binning(self, handle: int, hbin: int, vbin: int) -> int:
        """Sets the binning factors (1 to ``max_binning``)."""
        code, device = self._device(handle)
        if device is None:
            return code
        if not (1 <= min(hbin, vbin) <= max(hbin, vbin) <= device.info.max_binning):
            return VL_ERR_BAD_PARAM
        device.binning = (int(hbin), int(vbin))
        return VL_OK

    def vl_get_binning(self, handle: int) -> tuple[int, tuple[int, int] | None]:
        """Returns the horizontal and vertical binning."""
        code, device = self._device(handle)
        return code, None if device is None else device.binning

    def vl_set_roi(self, handle: int, x: int, y: int, width: int, height: int) -> int:
        """Sets the region of interest: 0-based origin and size, unbinned."""
        code, device = self._device(handle)
        if device is None:
            return code
        inside_x = 0 <= x and 1 <= width and x + width <= device.info.width
        if not (
            inside_x and 0 <= y and 1 <= height and y + height <= device.info.height
        ):
            return VL_ERR_BAD_PARAM
        device.roi = (int(x), int(y), int(width), int(height))
        return VL_OK

    def vl_get_roi(self, handle: int) -> tuple[int, tuple[int, int, int, int] | None]:
        """Returns the region of interest as ``(x, y, width, height)``."""
        code, device = self._device(handle)
        return code, None if device is None else device.roi

    def vl_set_cooler(self, handle: int, on: bool, set_point: float) -> int:
        """Switches the cooler on (regulating at ``set_point`` °C) or off."""
        code, device = self._device(handle)
        if device is None:
            return code
        info = device.info
        if on and not (info.min_set_point <= set_point <= info.max_set_point):
            return VL_ERR_BAD_PARAM
        with self._lock:
            self._update_temperature(device)
            device.target = float(set_point) if on else device.ambient
        return VL_OK

    def vl_get_temperature(self, handle: int) -> tuple[int, float]:
        """Returns the sensor temperature in °C."""
        code, device = self._device(handle)
        if device is None:
            return code, float("nan")
        with self._lock:
            return VL_OK, round(self._update_temperature(device), 3)

    def vl_get_cooler_power(self, handle: int) -> tuple[int, float]:
        """Returns the cooler power, in percent."""
        code, device = self._device(handle)
        if device is None:
            return code, float("nan")
        with self._lock:
            below = device.ambient - self._update_temperature(device)
        return VL_OK, round(max(0.0, min(100.0, 2.0 * below)), 1)

    def vl_start_exposure(self, handle: int, seconds: float, dark: bool) -> int:
        """Starts an exposure; ``dark`` keeps the shutter closed. Returns at once."""
        code, device = self._device(handle)
        if device is None:
            return code
        if code := self._injected("vl_start_exposure"):
            return code
        if not (0 <= seconds <= device.info.max_exptime):
            return VL_ERR_BAD_PARAM
        with self._lock:
            if device.exposure is not None:
                return VL_ERR_BUSY
            device.exposure = _Exposure(time.monotonic(), float(seconds), bool(dark))
        return VL_OK

    def vl_wait_exposure(self, handle: int, timeout_ms: int) -> int:
        """Blocks until the integration ends, up to ``timeout_ms``."""
        code, device = self._device(handle)
        if device is None:
            return code
        exposure = device.exposure
        if exposure is None:
            return VL_ERR_NOT_EXPOSING
        left = exposure.start + exposure.seconds - time.monotonic()
        if exposure.abort.wait(max(0.0, min(left, timeout_ms / 1000))):
            return self._aborted(device)
        if left > timeout_ms / 1000:
            return VL_ERR_TIMEOUT
        exposure.integrated = True
        return VL_OK

    def vl_read_frame(self, handle: int) -> tuple[int, np.ndarray | None]:
        """Reads the frame out (blocks for the readout) as a uint16 array."""
        code, device = self._device(handle)
        if device is None:
            return code, None
        exposure = device.exposure
        if exposure is None or not exposure.integrated:
            return VL_ERR_NOT_EXPOSING, None
        x, y, width, height = device.roi
        hbin, vbin = device.binning
        fraction = (width * height) / (device.info.width * device.info.height)
        if exposure.abort.wait(self.readout_time * fraction):
            return self._aborted(device), None
        with self._lock:
            if device.exposure is exposure:
                device.exposure = None
        if code := self._injected("vl_read_frame"):
            return code, None
        rate = DARK_RATE + (0.0 if exposure.dark else SKY_RATE)
        value = BIAS + rate * exposure.seconds * hbin * vbin
        shape = (height // vbin, width // hbin)
        frame = np.full(shape, min(value, 65535.0), dtype=np.float64)
        column, row = (HOT_PIXEL[0] - x) // hbin, (HOT_PIXEL[1] - y) // vbin
        if 0 <= row < shape[0] and 0 <= column < shape[1]:
            frame[row, column] = 65535.0
        return VL_OK, np.round(frame).astype(np.uint16)

    def _aborted(self, device: _Device) -> int:
        if device.info.serial in self._unplugged:
            return VL_ERR_NO_DEVICE
        return VL_ERR_ABORTED

    def vl_abort(self, handle: int) -> int:
        """Aborts the exposure; blocked calls return `VL_ERR_ABORTED`."""
        code, device = self._device(handle)
        if device is None:
            return code
        with self._lock:
            if device.exposure is None:
                return VL_ERR_NOT_EXPOSING
            device.end_exposure()
        return VL_OK


def load_library(**options: object) -> VendorLibrary:
    """Loads the library (``ctypes.CDLL`` for a real SDK)."""
    return VendorLibrary(**options)  # type: ignore[arg-type]
