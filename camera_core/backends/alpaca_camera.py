"""`AlpacaCamera`: one camera of an ASCOM Alpaca server, through alpyca."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from astropy.time import Time

from camera_core.camera import BaseCamera
from camera_core.events import CameraEvent
from camera_core.exceptions import CameraConnectionError, CameraError, ExposureError
from camera_core.mixins import (
    CoolerMixIn,
    ExposureTypeMixIn,
    GainMixIn,
    ImageAreaMixIn,
)
from camera_core.utils import run_in_executor

from .alpaca_device import (
    CAMERA_STATES,
    DOWNLOAD,
    ERROR,
    EXPOSING,
    IDLE,
    READING,
    AlpacaHeader,
    AlpacaInfo,
    alpaca_fits_model,
    limits_of,
    poll_state,
    read_header,
    read_info,
)
from .alpaca_protocol import (
    AlpacaCameraDevice,
    ascom_error,
    fetch_image,
    optional,
    parse_device_time,
)
from .alpaca_settings import AlpacaSettingsMixIn

if TYPE_CHECKING:
    from .alpaca import AlpacaCameraSystem

__all__ = ["AlpacaCamera"]

T = TypeVar("T")


class AlpacaCamera(
    AlpacaSettingsMixIn,
    CoolerMixIn,
    ImageAreaMixIn,
    ExposureTypeMixIn,
    GainMixIn,
    BaseCamera,
):
    """A camera on an ASCOM Alpaca server.

    ASCOM has no manual shutter control (``StartExposure`` opens it for light
    frames), so there is no shutter mix-in. Camera parameters besides those of
    `BaseCamera`: ``connection_params: {device_number: N}`` (else found by
    UID), ``exposure_poll_interval`` (s, default 0.1) and ``image_timeout``
    (s to download an image, default 60).

    Attributes
    ----------
    info : AlpacaInfo or None
        What the device reported at connect.
    device_header : AlpacaHeader
        Device values of the last exposure, used by the FITS cards.
    """

    __version__ = "0.1.0"
    fits_model = alpaca_fits_model
    _phase = IDLE  # the last CameraState reported as an exposure event

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        params = self.camera_params
        self.exposure_poll_interval = float(params.get("exposure_poll_interval", 0.1))
        self.image_timeout = float(params.get("image_timeout", 60.0))
        self.info: AlpacaInfo | None = None
        self.device_header = AlpacaHeader()
        self.device_number: int | None = None
        self._device: AlpacaCameraDevice | None = None
        self._session = requests.Session()
        self._binning = (1, 1)
        self._area: tuple[int, int, int, int] | None = None
        self._wanted: dict[str, Any] = {}  # device settings to restore on reconnect
        self._device_status: dict[str, Any] = {}

    # Device calls.

    @property
    def system(self) -> AlpacaCameraSystem:
        """The camera system (for the server settings)."""
        return self.camera_system  # type: ignore[return-value]

    def _require_device(self) -> AlpacaCameraDevice:
        if self._device is None or self.info is None:
            raise CameraError(f"Camera {self.name} is not connected.")
        return self._device

    async def _call(self, what: str, func: Callable[..., T], *args: Any) -> T:
        """Runs a blocking device call in the executor, translating its errors.

        An unreachable server or a device that lost its connection marks the
        camera disconnected (``connection_lost``); the poller reconnects it.
        """
        try:
            return await run_in_executor(func, *args)
        except Exception as err:
            error = ascom_error(err, what, self.name)
            if isinstance(error, CameraConnectionError):
                self.connection_lost(str(error))
            raise error from err

    async def _put(self, name: str, value: Any) -> None:
        device = self._require_device()
        await self._call(f"setting {name} to {value!r}", setattr, device, name, value)

    async def _read(self, name: str) -> Any:
        device = self._require_device()
        return await self._call(f"reading {name}", getattr, device, name)

    # Connection.

    async def _connect_internal(self, **connection_params: Any) -> None:
        system = self.system
        number = connection_params.get("device_number")
        if number is None:
            device = await system.find_device(self.uid)
            number = device.number
        number = int(number)
        device = AlpacaCameraDevice(system.address, number, system.timeout)
        self._device, self.info = device, None  # unusable until read_info works
        self.device_number = number
        what = f"connecting to camera {number} on {system.address}"
        try:
            await run_in_executor(setattr, device, "Connected", True)
            info = await run_in_executor(read_info, device)
        except Exception as err:
            self._device = None
            raise CameraConnectionError(str(ascom_error(err, what, self.name))) from err
        self.info = info
        self.can_stop = info.can_stop
        self.limits.update(**limits_of(info))
        self._device_status = {
            "server": system.address,
            "device_number": number,
            **info.to_status(),
        }
        await self._restore_settings()

    async def _restore_settings(self) -> None:
        """Applies the frame and the settings made before a reconnection."""
        try:
            await self._push_frame(
                self._binning, self._frame(self._binning, self._area)
            )
        except CameraError as err:
            if isinstance(err, CameraConnectionError):
                raise
            self.log(f"Binning/area not applied ({err}); using the full frame.", 30)
            self._binning, self._area = (1, 1), None
        for name, value in list(self._wanted.items()):
            try:
                await self._put(name, value)
            except CameraConnectionError:
                raise
            except CameraError as err:
                self.log(f"Could not restore {name}={value!r}: {err}", 30)
                del self._wanted[name]

    async def _disconnect_internal(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        try:
            await run_in_executor(setattr, device, "Connected", False)
        except Exception as err:  # a vanished server leaves nothing to disconnect
            self.log(f"Setting Connected=False failed: {err}", logging.WARNING)

    # Frame geometry.

    def _frame(
        self, binning: tuple[int, int], area: tuple[int, int, int, int] | None
    ) -> tuple[int, int, int, int]:
        """Alpaca ``(StartX, StartY, NumX, NumY)`` (binned, 0-based) of an area."""
        width, height = self.limits.width or 0, self.limits.height or 0
        x0, x1, y0, y1 = area or (1, width, 1, height)
        hbin, vbin = binning
        start_x, start_y = (x0 - 1) // hbin, (y0 - 1) // vbin
        num_x, num_y = (x1 - x0 + 1) // hbin, (y1 - y0 + 1) // vbin
        if num_x < 1 or num_y < 1:
            raise CameraError(
                f"Area {area} is smaller than one {hbin}×{vbin} binned pixel."
            )
        return start_x, start_y, num_x, num_y

    async def _push_frame(
        self, binning: tuple[int, int], frame: tuple[int, int, int, int]
    ) -> None:
        device = self._require_device()
        values = {
            "BinX": binning[0],
            "BinY": binning[1],
            "StartX": frame[0],
            "StartY": frame[1],
            "NumX": frame[2],
            "NumY": frame[3],
        }

        def push() -> None:
            for name, value in values.items():  # binning first: it rescales Num
                setattr(device, name, value)

        await self._call(f"setting the frame {values}", push)
        self._device_status.update(
            binning=list(binning), frame=[frame[0], frame[1], frame[2], frame[3]]
        )

    async def _get_binning_internal(self) -> tuple[int, int]:
        return self._binning

    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        info = self.info
        if info is not None and hbin != vbin and not info.can_asymmetric_bin:
            raise CameraError(
                f"Camera {self.name} cannot bin asymmetrically ({hbin}×{vbin})."
            )
        binning = (int(hbin), int(vbin))
        await self._push_frame(binning, self._frame(binning, self._area))
        self._binning = binning

    def _effective_area(self) -> tuple[int, int, int, int]:
        """The area the camera reads: the requested one rounded to the binning."""
        hbin, vbin = self._binning
        start_x, start_y, num_x, num_y = self._frame(self._binning, self._area)
        return (
            start_x * hbin + 1,
            (start_x + num_x) * hbin,
            start_y * vbin + 1,
            (start_y + num_y) * vbin,
        )

    async def _get_image_area_internal(self) -> tuple[int, int, int, int]:
        return self._effective_area()

    async def _set_image_area_internal(
        self, area: tuple[int, int, int, int] | None = None
    ) -> None:
        area = None if area is None else tuple(int(v) for v in area)  # type: ignore[assignment]
        await self._push_frame(self._binning, self._frame(self._binning, area))
        self._area = area

    # Exposing.

    async def _expose_internal(self, exposure: Any, **kwargs: Any) -> Any:
        device = self._require_device()
        info = self.info
        assert info is not None
        duration = float(exposure.exptime)
        if exposure.image_type == "bias" and info.exposure_min:
            duration = max(duration, info.exposure_min)
        light = bool(exposure.shutter_open)
        frame = self._frame(self._binning, self._area)
        await self._push_frame(self._binning, frame)
        await self._call(
            f"starting a {duration:g} s exposure", device.StartExposure, duration, light
        )
        started = self.loop.time()
        self.device_header = await self._call(
            "reading the header values", read_header, device, info, self._binning
        )
        stopped = await self._wait_for_image(device, duration, started)
        self._enter_phase(READING)
        data = await self._call(
            "downloading the image",
            fetch_image,
            self._session,
            device,
            (self.system.timeout, max(self.image_timeout, self.system.timeout)),
        )
        expected = (frame[3], frame[2])
        if data.shape != expected:
            raise ExposureError(
                f"Camera {self.name} sent a {data.shape[1]}×{data.shape[0]} image "
                f"for a {expected[1]}×{expected[0]} frame (did another client change "
                "the binning or the area?)."
            )
        await self._read_exposure_times(device, exposure, stopped)
        exposure.data = data
        return exposure

    def _enter_phase(self, state: int) -> None:
        """Emits the exposure events up to ``state``, each once, in order."""
        for phase, event in (
            (EXPOSING, CameraEvent.EXPOSURE_INTEGRATING),
            (READING, CameraEvent.EXPOSURE_READING),
        ):
            if self._phase < phase <= state:
                self._phase = phase
                if phase == READING:  # the device countdown is over
                    self.progress.set_remaining(None)
                self._notify(event)

    async def _wait_for_image(
        self, device: AlpacaCameraDevice, duration: float, started: float
    ) -> bool:
        """Polls CameraState until the image is ready; returns whether stopped.

        The image is only accepted once ``duration`` has elapsed (unless the
        exposure was stopped), so an image left over from an earlier exposure
        is never taken for this one.
        """
        self._phase = IDLE
        use_percent = True
        stopped = False
        while True:
            state, percent, ready = await self._call(
                "polling the exposure state", poll_state, device, use_percent
            )
            self._device_status["camera_state"] = CAMERA_STATES[state]
            if self._stop_event.is_set() and not stopped:
                stopped = True
                self._notify(CameraEvent.EXPOSURE_STOPPED)
            if state == ERROR:
                raise ExposureError(
                    f"Camera {self.name} reports CameraState Error during the exposure."
                )
            if state == EXPOSING:
                self._enter_phase(EXPOSING)
                if percent is None:
                    use_percent = False
                    self.progress.set_remaining(None)  # local clock
                elif not stopped:
                    fraction = min(max(float(percent), 0.0), 100.0) / 100.0
                    self.progress.set_remaining(duration * (1.0 - fraction))
            elif state in (READING, DOWNLOAD):
                self._enter_phase(READING)
            elif state == IDLE and ready:
                if stopped or self.loop.time() - started >= duration:
                    return stopped
            await asyncio.sleep(self.exposure_poll_interval)

    async def _read_exposure_times(
        self, device: AlpacaCameraDevice, exposure: Any, stopped: bool
    ) -> None:
        """Takes DATE-OBS (and a stopped frame's exptime) from the camera."""

        def read() -> tuple[Any, Any]:
            start = optional(lambda: device.LastExposureStartTime)
            length = optional(lambda: device.LastExposureDuration) if stopped else None
            return start, length

        start, length = await self._call("reading the exposure start time", read)
        moment = parse_device_time(start)
        obstime = None if moment is None else Time(moment, scale="utc")
        self.device_header = dataclasses.replace(
            self.device_header,
            date_device=(
                obstime.isot if obstime is not None else (start and str(start))
            ),
        )
        if obstime is not None and self.progress.stack_n <= 1:
            exposure.obstime = obstime
        if stopped and length is not None:
            exposure.exptime = float(length)

    async def _abort_internal(self) -> None:
        device, info = self._device, self.info
        if device is None or info is None:
            return
        if info.can_abort:
            await self._call("aborting the exposure", device.AbortExposure)
        elif info.can_stop:  # end it; the frame is discarded anyway
            await self._call("stopping the exposure", device.StopExposure)
        else:
            self.log("The camera cannot abort; its frame will be discarded.", 30)

    async def _stop_internal(self) -> None:
        device = self._require_device()
        if self.info is not None and not self.info.can_stop:
            raise CameraError(f"Camera {self.name} cannot stop an exposure early.")
        await self._call("stopping the exposure", device.StopExposure)

    def _status_internal(self) -> dict[str, Any]:
        """The last values read from the device (never queries it)."""
        return {
            **self._device_status,
            "binning": list(self._binning),
            "area": list(self._effective_area()),
        }

    # Capabilities.

    @property
    def capabilities(self) -> dict[str, Any]:
        """The mix-in capabilities, narrowed by the device's Can* properties."""
        caps = super().capabilities
        info = self.info
        if info is not None:
            caps.update(
                cooler=info.can_set_ccd_temperature,
                gain=info.gains is not None or info.gain_range is not None,
                abort=info.can_abort or info.can_stop,
                stop=info.can_stop,
            )
        return caps
