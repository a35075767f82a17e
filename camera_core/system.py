"""The camera system: discovers, adds and removes cameras."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import pathlib
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from .config import default_spool_dir, load_config
from .events import CameraSystemEvent
from .exceptions import CameraError
from .notifier import EventNotifier
from .utils import LoggerMixIn, Poller, maybe_await

if TYPE_CHECKING:
    from .camera import BaseCamera

__all__ = ["CameraSystem"]

_T_BaseCamera = TypeVar("_T_BaseCamera", bound="BaseCamera")


class CameraSystem(LoggerMixIn, Generic[_T_BaseCamera], metaclass=abc.ABCMeta):
    """A base class for the camera system.

    Parameters
    ----------
    camera_class
        The subclass of `BaseCamera` to use with this camera system.
    camera_config
        A configuration mapping or the path to a YAML file. Its ``cameras``
        section maps camera names to ``uid``, ``autoconnect``,
        ``connection_params`` and other camera parameters.
    include
        Camera UIDs (or names) that can be connected; others are ignored.
    exclude
        Camera UIDs (or names) that will be ignored.
    logger
        The logger to use. If `None`, the ``camera_core`` logger is used.
    log_header
        A string prefixed to each message logged.
    log_file
        If set, the log is also saved to this file.
    verbose
        Logging level for the logger; `False` logs warnings and errors only.

    Attributes
    ----------
    cameras : list
        The cameras currently handled.
    notifier : EventNotifier
        Notifies `CameraSystemEvent` and `CameraEvent` events.
    """

    camera_class: type[_T_BaseCamera] | None = None
    __version__: str = "0.0.0"

    def __init__(
        self,
        camera_class: type[_T_BaseCamera] | None = None,
        camera_config: str | os.PathLike | dict[str, Any] | None = None,
        include: list[Any] | None = None,
        exclude: list[Any] | None = None,
        logger: logging.Logger | None = None,
        log_header: str | None = None,
        log_file: str | os.PathLike | None = None,
        verbose: bool | int | None = False,
    ) -> None:
        from .camera import BaseCamera

        camera_class = camera_class if camera_class is not None else self.camera_class
        if not (
            isinstance(camera_class, type) and issubclass(camera_class, BaseCamera)
        ):
            raise ValueError("camera_class must be a subclass of BaseCamera.")
        self.camera_class = camera_class
        if logger is None:  # a logger of its own, so settings never leak
            base = logging.getLogger("camera_core")
            logger = base.getChild(f"{type(self).__name__}.{id(self):x}")
        self.logger = logger
        self.log_header = log_header
        if log_file is not None:
            handler = logging.FileHandler(pathlib.Path(log_file).expanduser())
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            self.logger.addHandler(handler)
        if verbose is not None and verbose is not False:
            self.logger.setLevel(logging.DEBUG if verbose is True else int(verbose))
        self.config = load_config(camera_config)
        cameras = self.config.get("cameras")
        self._camera_config: dict[str, Any] = {} if cameras is None else dict(cameras)
        self._validate_camera_config()
        self.include = None if include is None else list(include)
        self.exclude = None if exclude is None else list(exclude)
        self.cameras: list[_T_BaseCamera] = []
        self.notifier = EventNotifier()
        self._camera_poller: Poller | None = None
        self._tasks: set[asyncio.Task] = set()
        #: Unsaved frames of cameras that were removed (see `unsaved_exposures`).
        self._orphaned_unsaved: list[Any] = []
        self._recovering = asyncio.Lock()  # one recovery at a time
        self.setup()

    def _validate_camera_config(self) -> None:
        """Checks every camera entry now, so a bad template fails at start-up."""
        from .exceptions import TemplateError
        from .exposure import ImageNamer

        for cam_name, params in self._camera_config.items():
            if params is not None and not isinstance(params, dict):
                raise CameraError(f"Camera {cam_name!r}: the entry must be a mapping.")
            namer = (params or {}).get("image_namer")
            if namer is None or isinstance(namer, ImageNamer):
                continue
            if not isinstance(namer, dict):
                raise CameraError(
                    f"Camera {cam_name!r}: image_namer must be a mapping."
                )
            try:
                ImageNamer(**namer)
            except (TemplateError, TypeError) as err:
                raise CameraError(
                    f"Camera {cam_name!r}: invalid image_namer: {err}"
                ) from err

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop."""
        return asyncio.get_running_loop()

    def setup(self) -> CameraSystem:
        """Sets up the custom camera system. To be overridden; returns ``self``."""
        return self

    @abc.abstractmethod
    def list_available_cameras(self) -> list[str]:
        """Lists the UIDs of the cameras connected to the system.

        May also be a coroutine function.
        """

    def get_camera_config(
        self, name: str | None = None, uid: str | None = None
    ) -> dict[str, Any] | None:
        """Gets camera parameters from the configuration.

        Returns
        -------
        camera_params
            The parameters, with ``name`` set, or `None` if not configured.
        """
        for cam_name, params in self._camera_config.items():
            params = {} if params is None else params
            if (name is not None and cam_name == name) or (
                uid is not None and params.get("uid") == uid
            ):
                return {**params, "name": cam_name}
        return None

    def _allowed(self, uid: str | None, name: str | None) -> bool:
        keys = {uid, name} - {None}
        if self.include is not None and not keys & set(self.include):
            return False
        return not (self.exclude is not None and keys & set(self.exclude))

    async def add_camera(
        self,
        name: str | None = None,
        uid: str | None = None,
        force: bool = False,
        autoconnect: bool = True,
        **kwargs: Any,
    ) -> _T_BaseCamera:
        """Adds a new camera instance to `cameras`.

        Configuration values matching ``name`` or ``uid`` are used; ``kwargs``
        override them. A camera whose connection fails stays in `cameras`,
        disconnected, and the poller retries it.

        Raises
        ------
        CameraConnectionError
            If ``autoconnect`` and the connection fails.
        """
        config = self.get_camera_config(name=name, uid=uid) or {}
        config.update(kwargs)
        uid = uid if uid is not None else config.get("uid")
        name = name if name is not None else config.get("name", uid)
        if uid is None:
            raise ValueError(f"Camera {name!r} has no uid in the call or the config.")
        if not self._allowed(uid, name):
            raise CameraError(f"Camera {name} ({uid}) is excluded by include/exclude.")
        existing = self.get_camera(uid=uid) or self.get_camera(name=name)
        if existing:
            self.log(f"Camera {name} ({uid}) is already in the system.")
            return existing
        autoconnect = bool(config.get("autoconnect", autoconnect))
        camera = self.camera_class(  # type: ignore[misc]
            uid,
            self,
            name=name,
            force=force or bool(config.get("force", False)),
            image_namer=config.get("image_namer"),
            camera_params=config,
        )
        camera.autoconnect = autoconnect
        self.cameras.append(camera)
        self.notifier.notify(
            CameraSystemEvent.CAMERA_ADDED, camera._get_basic_payload()
        )
        self.log(f"Camera {name} ({uid}) added.", logging.INFO)
        if autoconnect:
            await camera.connect()
        return camera

    def get_camera(
        self, name: str | None = None, uid: str | None = None
    ) -> _T_BaseCamera | Literal[False]:
        """Gets a camera matching a name or UID.

        If only one camera is handled and no arguments are given, returns it.
        """
        if name is None and uid is None:
            return self.cameras[0] if len(self.cameras) == 1 else False
        for camera in self.cameras:
            if (name is not None and camera.name == name) or (
                uid is not None and camera.uid == uid
            ):
                return camera
        return False

    async def remove_camera(self, name: str | None = None, uid: str | None = None):
        """Removes a camera, cancelling any ongoing exposure."""
        camera = self.get_camera(name=name, uid=uid)
        if not camera:
            raise CameraError(f"Camera {name or uid} is not in the system.")
        try:
            await camera.disconnect()
        except CameraError as err:
            self.log(f"Camera {camera.name} did not disconnect cleanly: {err}", 30)
        with contextlib.suppress(ValueError):
            self.cameras.remove(camera)
        self._orphaned_unsaved.extend(camera.unsaved_exposures)  # never drop them
        self.notifier.notify(
            CameraSystemEvent.CAMERA_REMOVED, camera._get_basic_payload()
        )
        self.log(f"Camera {camera.name} ({camera.uid}) removed.", logging.INFO)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def on_camera_connected(self, uid: str) -> asyncio.Task:
        """Event handler for a newly connected camera; returns the add task."""
        return self._spawn(self.add_camera(uid=uid))

    def on_camera_disconnected(self, uid: str) -> asyncio.Task:
        """Event handler for a camera that was disconnected."""
        return self._spawn(self.remove_camera(uid=uid))

    async def _check_cameras(self) -> None:
        available = []
        for uid in await maybe_await(self.list_available_cameras()):
            config = self.get_camera_config(uid=uid) or {}
            if self._allowed(uid, config.get("name")):
                available.append(uid)
        for uid in available:
            camera = self.get_camera(uid=uid)
            if not camera:
                try:
                    await self.add_camera(uid=uid)
                except CameraError as err:
                    self.log(f"Camera {uid} could not be added: {err}", 30)
            elif not camera.connected and camera.autoconnect:
                with contextlib.suppress(CameraError):
                    await camera.connect()
        for camera in list(self.cameras):
            if camera.uid not in available and not camera.force:
                await self.remove_camera(uid=camera.uid)

    async def start_camera_poller(self, interval: float = 1.0) -> CameraSystem:
        """Periodically adds new cameras, removes gone ones, and reconnects.

        Parameters
        ----------
        interval
            Seconds between checks of `list_available_cameras`.
        """
        if self._camera_poller is None:
            self._camera_poller = Poller("camera_poller", self._check_cameras, interval)
        self._camera_poller.start(delay=interval)
        return self

    async def stop_camera_poller(self) -> None:
        """Stops the camera poller."""
        if self._camera_poller is not None:
            await self._camera_poller.stop()

    async def disconnect(self) -> None:
        """Stops the poller and removes every camera."""
        await self.stop_camera_poller()
        for camera in list(self.cameras):
            await self.remove_camera(uid=camera.uid)

    @property
    def unsaved_exposures(self) -> list[Any]:
        """Frames written neither to disk nor spool, of every camera.

        They include those of cameras removed since (e.g. unplugged).
        """
        orphans = [e for e in self._orphaned_unsaved if e in e.camera._unsaved]
        return [*orphans, *(e for c in self.cameras for e in c.unsaved_exposures)]

    async def recover(
        self, spool_dirs: list[os.PathLike | str] | None = None
    ) -> list[Any]:
        """Writes spooled frames and frames held in memory to their targets.

        Runs `camera_core.spool.recover_all` on ``spool_dirs`` (by default the
        spool directory of every camera and the default one) and on
        `unsaved_exposures`.

        Returns
        -------
        results
            One `~camera_core.spool.RecoverResult` per frame found.
        """
        from .spool import recover_all

        if spool_dirs is None:
            spools = {camera.spool_dir for camera in self.cameras}
            spools.add(default_spool_dir())
            spool_dirs = sorted(spools)
        async with self._recovering:  # never two writes of one frame in memory
            results = await recover_all(self.unsaved_exposures, spool_dirs)
        self._orphaned_unsaved = [
            e for e in self._orphaned_unsaved if e in e.camera._unsaved
        ]
        return results
