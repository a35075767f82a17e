"""The base camera class (and, re-exported, the camera system)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import pathlib
from collections.abc import Callable
from typing import Any

from .capabilities import CameraLimits
from .config import default_spool_dir
from .events import CameraEvent
from .exceptions import CameraConnectionError, CameraError
from .exposing import ExposureControl
from .exposure import ImageNamer
from .mixins import (
    CoolerMixIn,
    ExposureTypeMixIn,
    GainMixIn,
    ImageAreaMixIn,
    ShutterMixIn,
)
from .models.builtin import basic_fits_model
from .models.fits import FITSModel
from .progress import ExposureProgress
from .system import CameraSystem
from .utils import LoggerMixIn

__all__ = ["BaseCamera", "CameraSystem"]


class BaseCamera(ExposureControl, LoggerMixIn, metaclass=abc.ABCMeta):
    """A base class for wrapping a camera API in a standard implementation.

    Instantiating the class does not open the camera; call and await `connect`.

    Parameters
    ----------
    uid
        The unique identifier for the camera.
    camera_system
        The camera system handling this camera.
    name
        The name of the camera. If not set, the ``uid`` is used.
    force
        Keep the camera in the system even if it is not in the available list.
    image_namer
        An `ImageNamer`, or a mapping of its parameters. Defaults to
        ``{camera.name}-{num:04d}.fits`` in the current directory.
    camera_params
        The camera's configuration entry. Besides ``uid``, ``autoconnect`` and
        ``connection_params`` it may set ``limits`` (see `CameraLimits`),
        ``exposure_timeout_margin`` (s, default 30), ``spool_dir``,
        ``write_retries`` (default 3), ``write_backoff`` (s, default 0.1),
        ``gzip_level`` (default 1), ``time_factor`` (default 1) and the cooler
        settings of `CoolerMixIn`.

    Attributes
    ----------
    connected : bool
        Whether the camera is open and connected.
    fits_model : FITSModel
        The data model of the images. Each exposure works on its own copy.
    image_namer : ImageNamer
        Assigns default file paths to new exposures.
    progress : ExposureProgress
        Phase, elapsed and remaining time of the current exposure.
    limits : CameraLimits
        What the camera accepts, used to validate commands.
    """

    __version__: str = "0.0.0"
    fits_model: FITSModel = basic_fits_model

    def __init__(
        self,
        uid: str,
        camera_system: CameraSystem,
        name: str | None = None,
        force: bool = False,
        image_namer: ImageNamer | dict[str, Any] | None = None,
        camera_params: dict[str, Any] | None = None,
    ) -> None:
        self.uid = uid
        self.name = name if name is not None else uid
        self.camera_system = camera_system
        self.force = force
        self.autoconnect = True
        self.camera_params: dict[str, Any] = dict(camera_params or {})
        params = self.camera_params
        self.logger = camera_system.logger
        self.log_header = f"[{self.name.upper()}]: "
        if isinstance(image_namer, ImageNamer):
            self.image_namer = image_namer
        else:
            self.image_namer = ImageNamer(**(image_namer or {}))
        self.image_namer.camera = self
        # Each camera changes its own copy, never the class-wide or built-in model.
        self.fits_model = type(self).fits_model.copy()
        self.limits = CameraLimits.from_config(params.get("limits"))
        self.time_factor = float(params.get("time_factor", 1.0))
        self.exposure_timeout_margin = float(
            params.get("exposure_timeout_margin", 30.0)
        )
        spool = params.get("spool_dir")
        self.spool_dir = default_spool_dir() if spool is None else pathlib.Path(spool)
        self.write_retries = int(params.get("write_retries", 3))
        self.write_backoff = float(params.get("write_backoff", 0.1))
        self.gzip_level = int(params.get("gzip_level", 1))
        self.write_fault: Callable[[pathlib.Path, bool], None] | None = None
        self.connected = False
        self.header_model_error: str | None = None
        self._status: dict[str, Any] = {}
        self.progress = ExposureProgress(camera=self.name)
        self._init_exposure_control()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (name={self.name!r}, uid={self.uid!r})>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop."""
        return asyncio.get_running_loop()

    @property
    def camera_config(self) -> dict[str, Any]:
        """The camera's configuration entry (basecam's name for `camera_params`)."""
        return self.camera_params

    @property
    def time_factor(self) -> float:
        """Wall seconds per camera second (1 for real cameras)."""
        return self._time_factor

    @time_factor.setter
    def time_factor(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"time_factor must be positive, not {value}.")
        self._time_factor = float(value)
        if hasattr(self, "progress"):
            self.progress.time_factor = self._time_factor

    def _get_basic_payload(self) -> dict[str, Any]:
        """Returns the basic payload for notifying events."""
        return {"name": self.name, "uid": self.uid, "camera": self.name}

    @abc.abstractmethod
    async def _connect_internal(self, **connection_params: Any) -> None:
        """Connects the camera. Must raise `CameraConnectionError` on failure."""

    async def _disconnect_internal(self) -> None:
        """Disconnects the camera. Must raise `CameraConnectionError` on failure."""

    @abc.abstractmethod
    async def _expose_internal(self, exposure: Any, **kwargs: Any) -> Any:
        """Exposes and reads the camera, setting ``exposure.data``."""

    async def _post_process_internal(self, exposure: Any, **kwargs: Any) -> Any:
        """Post-processes a read exposure. Override to enable post-processing."""
        return exposure

    def _status_internal(self) -> dict[str, Any]:
        """Returns device status values. To be overridden by the camera."""
        return {}

    async def connect(self, force: bool = False, **kwargs: Any) -> BaseCamera:
        """Connects the camera and performs all the necessary setup.

        Parameters
        ----------
        force
            Reconnect even if the camera is already connected.
        kwargs
            Override the configured ``connection_params``.

        Raises
        ------
        CameraConnectionError
            If the connection fails.
        """
        if self.connected and not force:
            return self
        if self.connected:
            await self.disconnect()
        configured = self.camera_params.get("connection_params")
        params = {"uid": self.uid} if configured is None else dict(configured)
        params.update(kwargs)
        try:
            await self._connect_internal(**params)
        except Exception as err:
            error = (
                err
                if isinstance(err, CameraConnectionError)
                else (
                    CameraConnectionError(
                        f"Camera {self.name} failed to connect: {err}"
                    )
                )
            )
            self._notify(CameraEvent.CAMERA_CONNECT_FAILED, {"error": str(error)})
            self.log(str(error), logging.ERROR)
            raise error from err
        self.connected = True
        self._notify(CameraEvent.CAMERA_CONNECTED)
        self.log("Camera connected.", logging.INFO)
        self._check_fits_model()
        return self

    def _check_fits_model(self) -> None:
        """Evaluates the header model once, so a broken card shows up at connect.

        A failure is logged as an error (the frame would still be written, with
        a minimal header); it does not prevent the connection.
        """
        import numpy as np

        from .exposure import Exposure

        probe = Exposure(self, data=np.zeros((2, 2), dtype=np.uint16))
        probe.image_type, probe.exptime, probe.exptime_n = "object", 0.0, 0.0
        try:
            probe.to_hdu()
        except Exception as err:
            self.header_model_error = f"{type(err).__name__}: {err}"
            self.log(
                f"The FITS header model fails to evaluate ({self.header_model_error}). "
                "Frames will be written with a minimal header until it is fixed.",
                logging.ERROR,
            )
        else:
            self.header_model_error = None

    async def disconnect(self) -> bool:
        """Aborts any exposure and disconnects the camera.

        Raises
        ------
        CameraConnectionError
            If the device fails to disconnect.
        """
        if self.exposing:
            with contextlib.suppress(CameraError):
                await self.abort()
        was_connected = self.connected
        try:
            await self._disconnect_internal()
        except Exception as err:
            self._notify(CameraEvent.CAMERA_DISCONNECT_FAILED, {"error": str(err)})
            raise CameraConnectionError(
                f"Camera {self.name} failed to disconnect: {err}"
            ) from err
        finally:
            self.connected = False
        if was_connected:  # a lost camera was already reported disconnected
            self._notify(CameraEvent.CAMERA_DISCONNECTED)
        return True

    def connection_lost(self, error: str) -> None:
        """Marks the camera disconnected after the device vanished.

        Drivers call this when they notice the device is gone (unplugged, server
        lost). Emits ``CAMERA_DISCONNECTED`` with the error; the camera poller
        reconnects the camera when it is available again.
        """
        if not self.connected:
            return
        self.connected = False
        self.log(f"Connection lost: {error}", logging.ERROR)
        self._notify(CameraEvent.CAMERA_DISCONNECTED, {"error": error})

    def get_status(self, update: bool = False) -> dict[str, Any]:
        """Returns a dictionary with the camera status values.

        Parameters
        ----------
        update
            Query the device; otherwise return the last cached status.
        """
        if update or not self._status:
            status = self._status_internal() if self.connected else {}
            self._status = {
                "name": self.name,
                "uid": self.uid,
                "connected": self.connected,
                **status,
                "exposure": self.progress.to_dict(),
            }
        return self._status

    @property
    def status(self) -> dict[str, Any]:
        """Returns the cached status. Equivalent to ``get_status(update=False)``."""
        return self.get_status(update=False)

    @property
    def capabilities(self) -> dict[str, Any]:
        """What this camera can do, from its mix-ins (via the MRO) and limits."""
        return {
            "cooler": isinstance(self, CoolerMixIn),
            "shutter": isinstance(self, ShutterMixIn),
            "image_area": isinstance(self, ImageAreaMixIn),
            "exposure_type": isinstance(self, ExposureTypeMixIn),
            "gain": isinstance(self, GainMixIn),
            "abort": True,
            "stop": self._supports_stop(),
            "limits": self.limits.to_dict(),
        }

    @property
    def unsaved_exposures(self) -> list[Any]:
        """Exposures whose frames could be written neither to disk nor spool."""
        return list(self._unsaved)
