"""ASCOM Alpaca cameras, through ``alpyca``.

`AlpacaCameraSystem` serves the cameras configured on one Alpaca server; each
is an `~camera_core.backends.alpaca_camera.AlpacaCamera`. The configuration's
``alpaca`` section names the server::

    backend: alpaca
    alpaca: {host: 127.0.0.1, port: 11111, devices: null, timeout: 5}
    cameras:
      main:
        uid: 127.0.0.1:11111/camera/0     # as list_available_cameras reports it
        connection_params: {device_number: 0}   # optional

A camera's UID is the server's ``UniqueID`` (management API), or
``host:port/camera/N`` for servers without one. ``devices`` restricts the
cameras to those device numbers (`None`: all of them).

alpyca is synchronous, so every device call runs in an executor. A server that
stops answering marks its cameras disconnected (``connection_lost``); the
camera poller reconnects them, re-applying their settings, when it answers
again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests

from camera_core.exceptions import CameraConnectionError, CameraError
from camera_core.system import CameraSystem
from camera_core.utils import run_in_executor

from .alpaca_camera import AlpacaCamera
from .alpaca_protocol import (
    AlpacaDevice,
    AlpacaServerUnreachable,
    address,
    discover_cameras,
)

__all__ = ["ALPACA_DEFAULTS", "AlpacaCamera", "AlpacaCameraSystem"]

#: Defaults of the ``alpaca`` configuration section.
ALPACA_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 11111,
    "devices": None,
    "timeout": 5.0,
}


class AlpacaCameraSystem(CameraSystem[AlpacaCamera]):
    """The cameras of one ASCOM Alpaca server.

    Reads the ``alpaca`` section of the configuration (see `ALPACA_DEFAULTS`).

    Attributes
    ----------
    host, port, timeout
        The server and the seconds each request may take.
    devices
        Device numbers to use, or `None` for every camera of the server.
    """

    __version__ = "0.1.0"

    def __init__(
        self, camera_class: type[AlpacaCamera] | None = None, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(
            AlpacaCamera if camera_class is None else camera_class, *args, **kwargs
        )

    def setup(self) -> AlpacaCameraSystem:
        """Reads and checks the ``alpaca`` configuration section."""
        section = {**ALPACA_DEFAULTS, **(self.config.get("alpaca") or {})}
        unknown = sorted(set(section) - set(ALPACA_DEFAULTS))
        if unknown:
            raise CameraError(f"Unknown alpaca setting(s) {unknown}.")
        self.host = str(section["host"])
        self.port = int(section["port"])
        self.timeout = float(section["timeout"])
        if self.timeout <= 0:
            raise CameraError(f"alpaca.timeout must be positive, not {self.timeout}.")
        devices = section["devices"]
        self.devices = None if devices is None else [int(n) for n in devices]
        self._session = requests.Session()
        self._session_lock = threading.Lock()
        self._known: dict[str, AlpacaDevice] = {}
        self._server_lost: str | None = None
        self._prefetched: list[str] | None = None
        return self

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return address(self.host, self.port)

    def _discover(self) -> list[AlpacaDevice]:
        with self._session_lock:
            return discover_cameras(
                self._session, self.host, self.port, self.devices, self.timeout
            )

    async def discover(self) -> list[AlpacaDevice]:
        """Lists the server's cameras (those in ``devices``, if set).

        Raises
        ------
        AlpacaServerUnreachable
            If the server does not answer.
        """
        found = await run_in_executor(self._discover)
        self._known = {device.uid: device for device in found}
        return found

    async def list_available_cameras(self) -> list[str]:
        """The UIDs of the server's cameras (none if the server does not answer)."""
        if self._prefetched is not None:  # discovered by this poller check
            return list(self._prefetched)
        try:
            return [device.uid for device in await self.discover()]
        except AlpacaServerUnreachable as err:
            self.log(str(err), logging.WARNING)
            return []

    async def find_device(self, uid: str) -> AlpacaDevice:
        """The device with UID ``uid``, asking the server if not known yet.

        Raises
        ------
        CameraConnectionError
            If the server has no such camera (or does not answer).
        """
        device = self._known.get(uid)
        if device is None:
            await self.discover()
            device = self._known.get(uid)
        if device is None:
            raise CameraConnectionError(
                f"The Alpaca server at {self.address} has no camera with UID {uid!r} "
                f"(it has {sorted(self._known) or 'none'})."
            )
        return device

    async def _check_cameras(self) -> None:
        """The poller's check; an unanswering server disconnects its cameras.

        The cameras stay in the system while the server is away (they are not
        removed as if the server had dropped them), and the poller reconnects
        them when it answers again.
        """
        try:
            found = await self.discover()
        except AlpacaServerUnreachable as err:
            if self._server_lost is None:
                self.log(f"{err} Its cameras are disconnected.", logging.WARNING)
            self._server_lost = str(err)
            for camera in self.cameras:
                camera.connection_lost(str(err))
            return
        if self._server_lost is not None:
            self.log(f"The Alpaca server at {self.address} answers again.", 20)
            self._server_lost = None
        self._prefetched = [device.uid for device in found]
        try:
            await super()._check_cameras()
        finally:
            self._prefetched = None
