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
    narrow_limits,
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
    UID), ``exposure_poll_interval`` (s, default 0.1), ``image_timeout``
    (s to download an image, default 60) and ``late_image_margin`` (s,
    default 5; `None` for cameras known to end aborted exposures at once).
    ``late_image_margin`` is how long after its end an aborted exposure may
    still post its image.

    Configured ``limits`` take precedence over the device's but only narrow
    them (see `.narrow_limits`).

    Some cameras (the simulator among them) keep an aborted exposure running
    and post its image later, where it could be taken for the next frame.
    After an abort, the next ``StartExposure`` therefore waits until the
    aborted exposure has delivered its image or would have ended, plus
    ``late_image_margin``, and the camera is idle.

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
        margin = params.get("late_image_margin", 5.0)
        self.late_image_margin = None if margin is None else float(margin)
        self._configured_limits = dataclasses.replace(self.limits)
        self._wanted: dict[str, Any] = {}  # device settings to restore on reconnect
        self._device_status: dict[str, Any] = {}
        self._exposure_end: float | None = None  # loop time the exposure ends
        self._aborted_end: float | None = None  # when an aborted exposure ends

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
        self.limits.update(**narrow_limits(limits_of(info), self._configured_limits))
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
        await self._wait_out_aborted_exposure(device)
        # Set before the call: an abort may come while the request is in flight.
        self._exposure_end = self.loop.time() + duration
        try:
            await self._call(
                f"starting a {duration:g} s exposure",
                device.StartExposure,
                duration,
                light,
            )
        except CameraError:
            self._exposure_end = None
            raise
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
        self._exposure_end = None
        await self._read_exposure_times(device, exposure, stopped)
        exposure.data = data
        return exposure

    async def _wait_out_aborted_exposure(self, device: AlpacaCameraDevice) -> None:
        """Waits until an aborted exposure can no longer post its image.

        That is once the camera is idle and either has the late image ready
        (``StartExposure`` then discards it) or the aborted exposure would have
        ended plus ``late_image_margin``. The wait takes at most half the
        ``exposure_timeout_margin``, so that the frame itself still fits.

        Raises
        ------
        ExposureError
            If the aborted exposure is still to run for longer than that.
        """
        end = self._aborted_end
        if end is None:
            return
        now = self.loop.time()
        until = end + (self.late_image_margin or 0.0)
        give_up = now + self.exposure_timeout_margin / 2
        if end > give_up:
            raise ExposureError(
                f"Camera {self.name} may still post the image of the exposure "
                f"aborted before, for {end - now:.0f} s more; expose again then (or "
                "set late_image_margin to null if this camera ends aborted exposures)."
            )
        while True:
            state, _, ready = await self._call(
                "polling the camera state", poll_state, device, False
            )
            now = self.loop.time()
            if state in (IDLE, ERROR) and (ready or now >= until):
                break  # the late image is in, or no longer expected
            if now >= give_up:
                self.log("No late image from the aborted exposure; going on.", 30)
                break  # StartExposure will say if the camera is still busy
            await asyncio.sleep(self.exposure_poll_interval)
        self._aborted_end = None

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
        is never taken for this one; and `_wait_out_aborted_exposure` made sure
        no aborted exposure can still post one meanwhile.
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
        end, self._exposure_end = self._exposure_end, None
        if end is not None and self.late_image_margin is not None:
            self._aborted_end = max(end, self._aborted_end or end)
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
