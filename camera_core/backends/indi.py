"""INDI cameras: every CCD device of an indiserver as a `BaseCamera`.

Selected with ``backend: indi``; the server comes from the ``indi`` section and
each camera's ``uid`` is its INDI device name::

    backend: indi
    indi: {host: 127.0.0.1, port: 7624, timeout: 5}
    cameras:
      ccd:
        uid: CCD Simulator
        polling_period_ms: 100     # optional: POLLING_PERIOD set on connect

Camera parameters besides those of `BaseCamera`: ``polling_period_ms``,
``connect_timeout`` (s, default 15: switching the device on) and
``disconnect_device`` (switch the device off on disconnect, default false).

The connection is supervised by `INDIConnection` (liveness within 5 s; pings
go to the devices of the connected cameras, and a device that is exposing may
be silent for a while, see `~camera_core.backends.indi_liveness`). When the
server is lost the cameras are marked lost and
`INDICameraSystem.list_available_cameras` returns nothing, so the poller
removes them; when it is back the poller adds and connects them again and the
settings made through this backend (binning, area, gain, offset, set point,
frame type, polling period) are applied again, with the upload mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from astropy.time import Time

from ..camera import BaseCamera, CameraSystem
from ..events import CameraEvent, ExposurePhase
from ..exceptions import CameraConnectionError, CameraError, ExposureError
from ..mixins import CoolerMixIn, ExposureTypeMixIn, GainMixIn, ImageAreaMixIn
from ..utils import run_in_executor
from .indi_client import INDIConnection
from .indi_device import INDIDeviceMixIn, as_float
from .indi_exposure import ExposureTracker
from .indi_fits import decode_blob, device_cards
from .indi_waiters import event_is

__all__ = ["INDICamera", "INDICameraSystem", "INDIConnection"]

#: The CCD bit of DRIVER_INFO.DRIVER_INTERFACE.
CCD_INTERFACE = 1 << 1


class INDICameraSystem(CameraSystem):
    """The CCD devices of one indiserver (``indi`` section of the config).

    Attributes
    ----------
    connection : INDIConnection
        The supervised connection to the server.
    """

    __version__ = "0.1.0"

    def __init__(self, camera_class: type | None = None, *args: Any, **kwargs: Any):
        super().__init__(
            INDICamera if camera_class is None else camera_class, *args, **kwargs
        )

    def setup(self) -> INDICameraSystem:
        """Creates the connection (started by the first poll or connect)."""
        section = dict(self.config.get("indi") or {})
        self.connection = INDIConnection(
            host=str(section.get("host", "127.0.0.1")),
            port=int(section.get("port", 7624)),
            timeout=float(section.get("timeout", 5.0)),
            logger=self.logger,
        )
        self.connection.on_lost(self._server_lost)
        self.connection.add_listener(self._device_event)
        self._settings: dict[str, dict[str, Any]] = {}
        self._listed = False
        return self

    def settings(self, uid: str) -> dict[str, Any]:
        """The settings made on device ``uid``, kept across reconnections."""
        return self._settings.setdefault(uid, {})

    async def list_available_cameras(self) -> list[str]:
        """The CCD devices of the server; empty while it is not alive.

        The first call starts the connection and waits (up to the ``timeout``
        of the ``indi`` section) for the server and its device definitions.
        """
        conn = self.connection
        if not self._listed:
            self._listed = True
            if await conn.wait_alive():
                described = conn.waiter(lambda _: self._described() or None)
                with contextlib.suppress(CameraError):
                    await conn.wait(described, conn.timeout, "device definitions")
        conn.start()
        found = []
        for device in conn.devices():
            interface = conn.text(device, "DRIVER_INFO", "DRIVER_INTERFACE")
            with contextlib.suppress(TypeError, ValueError):
                if int(interface) & CCD_INTERFACE:  # type: ignore[arg-type]
                    found.append(device)
        return found

    def _described(self) -> bool:
        """Whether every device known has defined its DRIVER_INFO."""
        conn = self.connection
        return all(
            conn.text(device, "DRIVER_INFO", "DRIVER_INTERFACE") is not None
            for device in conn.devices()
        )

    def _server_lost(self, reason: str) -> None:
        for camera in list(self.cameras):
            camera.connection_lost(
                f"INDI server {self.connection.address} lost: {reason}"
            )

    def _device_event(self, event: Any) -> None:
        if event.eventtype == "Delete" and not event.vectorname:
            camera = self.get_camera(uid=event.devicename)
            if camera:
                camera.connection_lost(f"INDI device {event.devicename} was deleted")

    async def disconnect(self) -> None:
        """Removes every camera, then closes the server connection."""
        await super().disconnect()
        await self.connection.stop()


class INDICamera(
    INDIDeviceMixIn,
    CoolerMixIn,
    ImageAreaMixIn,
    ExposureTypeMixIn,
    GainMixIn,
    BaseCamera,
):
    """A CCD device of an indiserver (its ``uid`` is the device name).

    Attributes
    ----------
    device : str
        The INDI device name.
    header_values : dict
        Device metadata for the FITS header, cached at connect and readout.
    """

    __version__ = "0.1.0"
    can_stop = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device = str(self.uid)
        self.header_values: dict[str, Any] = {}
        self._countdown: tuple[float, float] = (0.0, 0.0)
        self._last_remaining: float | None = None
        self._in_use = False
        self.fits_model[0].header_model.extend(device_cards(self._header_value))

    def _header_value(self, key: str) -> Any:
        return self.header_values.get(key)

    # Connection.

    async def _connect_internal(self, **connection_params: Any) -> None:
        conn = self.connection
        self.device = str(connection_params.get("uid", self.uid))
        device = self.device
        if not await conn.wait_alive():
            raise CameraConnectionError(
                f"INDI server {conn.address} is not reachable: {conn.error}."
            )
        defined = conn.waiter(
            lambda _: conn.text(device, "DRIVER_INFO", "DRIVER_INTERFACE"), now=True
        )
        try:
            await conn.wait(defined, self.timeout, f"INDI device {device!r}")
        except CameraConnectionError:
            raise
        except CameraError:
            raise CameraConnectionError(
                f"No INDI device {device!r} on {conn.address} "
                f"(devices: {conn.devices()})."
            ) from None
        switch_timeout = float(self.camera_params.get("connect_timeout", 15.0))
        if "CONNECT" not in conn.switches_on(device, "CONNECTION"):
            await self._request("CONNECTION", {"CONNECT": "On"}, timeout=switch_timeout)
        ready = conn.waiter(lambda _: self._ready() or None)
        await conn.wait(ready, switch_timeout, f"{device} CCD properties")
        conn.remove_listener(self._on_event)
        conn.add_listener(self._on_event)
        if not self._in_use:  # pings now go to this device
            conn.use(device)
            self._in_use = True
        await self._configure()
        self._update_limits()
        self._refresh_header_values()

    async def _disconnect_internal(self) -> None:
        conn = self.connection
        conn.remove_listener(self._on_event)
        if self._in_use:
            conn.unuse(self.device)
            self._in_use = False
        if self.camera_params.get("disconnect_device") and conn.alive:
            with contextlib.suppress(CameraError):
                await conn.send(self.device, "CONNECTION", {"DISCONNECT": "On"})

    def _on_event(self, event: Any) -> None:
        if event.devicename != self.device or event.eventtype != "Set":
            return
        if event.vectorname == "CCD_EXPOSURE" and event.state == "Busy":
            value = as_float(event.get("CCD_EXPOSURE_VALUE"))
            if value is not None and self.exposing:
                now = asyncio.get_running_loop().time()
                self._countdown = (max(value, 0.0), now)
                self._count_down(now)
        elif event.vectorname == "CONNECTION" and self.connected:
            if "DISCONNECT" in self.connection.switches_on(self.device, "CONNECTION"):
                self.connection_lost(f"INDI device {self.device} was switched off")

    # Exposing.

    def _count_down(self, now: float | None = None) -> None:
        """Reports the device's last remaining time, less the time since.

        Drivers update CCD_EXPOSURE once per polling period, and some stop for
        the last second; in between the countdown runs from the last report and
        never goes up.
        """
        if self.progress.phase is not ExposurePhase.INTEGRATING:
            return
        value, at = self._countdown
        now = asyncio.get_running_loop().time() if now is None else now
        remaining = max(value - (now - at), 0.0)
        last = self._last_remaining
        self._last_remaining = remaining if last is None else min(remaining, last)
        self.progress.set_remaining(self._last_remaining)

    async def _count_down_loop(self, interval: float = 0.1) -> None:
        while True:
            self._count_down()
            await asyncio.sleep(interval)

    async def _expose_internal(self, exposure: Any, **kwargs: Any) -> Any:
        conn, device = self.connection, self.device
        await self._set_frame_type(exposure.image_type)
        low = self._bounds("CCD_EXPOSURE", "CCD_EXPOSURE_VALUE")[0] or 0.0
        value = max(float(exposure.exptime), low)
        waiters = self._exposure_waiters(value)
        started, end, image, failure = waiters
        try:
            # The driver may block a while (a readout) and miss pings: while
            # exposing, the connection allows it a longer silence.
            with conn.transfer():
                await conn.send(device, "CCD_EXPOSURE", {"CCD_EXPOSURE_VALUE": value})
                begun = await _first(
                    (started, failure), self.timeout, f"{device} start"
                )
                self._notify(CameraEvent.EXPOSURE_INTEGRATING)
                self._last_remaining = None
                self._countdown = (begun, asyncio.get_running_loop().time())
                ticker = asyncio.ensure_future(self._count_down_loop())
                try:
                    await _first((end, image, failure))
                finally:
                    ticker.cancel()
                self.progress.set_remaining(0.0)
                self._notify(CameraEvent.EXPOSURE_READING)
                data, blob_format = await _first((image, failure))
        finally:
            conn.release(*waiters)
        frame, header = await run_in_executor(decode_blob, data, blob_format)
        exposure.data = frame
        if self.progress.stack_n <= 1 and header.get("DATE-OBS"):
            with contextlib.suppress(ValueError):
                exposure.obstime = Time(header["DATE-OBS"], scale="utc")
        self._refresh_header_values()
        return exposure

    def _exposure_waiters(self, value: float) -> list[asyncio.Future]:
        """Waiters for the start, end, image and failure of one exposure.

        The start resolves to the device's remaining time when it started;
        leftovers of an earlier exposure are ignored (see `ExposureTracker`).
        """
        conn = self.connection
        tracker = ExposureTracker(
            self.device,
            value,
            asyncio.get_running_loop().time,
            lambda message: self.log(message, logging.WARNING),
        )
        # Fed in this order: the event that starts the exposure is seen started.
        checks = (tracker.start, tracker.ended, tracker.image, tracker.failed)
        return [conn.waiter(check, now=False) for check in checks]

    async def _abort_internal(self) -> None:
        conn, device = self.connection, self.device
        vector = conn.vector(device, "CCD_EXPOSURE")
        if not conn.alive or vector is None:
            return
        busy = vector.state == "Busy"
        idle = conn.waiter(
            lambda e: (
                True
                if event_is(e, device, "CCD_EXPOSURE")
                and e.state in ("Idle", "Ok", "Alert")
                else None
            ),
            now=False,
        )
        try:
            await conn.send(device, "CCD_ABORT_EXPOSURE", {"ABORT": "On"})
            if busy:
                await conn.wait(idle, min(self.timeout, 2.0), f"{device} abort")
        finally:
            conn.release(idle)


async def _first(
    futures: tuple[asyncio.Future, ...], timeout: float | None = None, what: str = ""
) -> Any:
    """The result of the first future to finish (earlier ones win ties)."""
    done, _ = await asyncio.wait(
        futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    if not done:
        raise ExposureError(f"{what}: no answer within {timeout:g} s.")
    for future in futures:
        if future in done and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]
    return next(f for f in futures if f in done).result()
