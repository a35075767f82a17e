"""Camera events to actor keywords, always on.

The bridge listens to the camera system's notifier and broadcasts keywords for
connections, set points, exposure phases and written files, whether or not a
command is running. While a camera flushes, integrates or reads it also
re-publishes ``exposure_state`` at a fixed interval (twice a second by
default) so that clients see the remaining time count down.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from typing import TYPE_CHECKING, Any

from camera_core import CameraEvent, CoolerMixIn, EventListener

from .tools import to_json

if TYPE_CHECKING:
    from .actor import BaseCameraActor

__all__ = ["EventBridge"]

#: Phases during which exposure_state is re-published periodically.
LIVE_PHASES = frozenset({"flushing", "integrating", "reading", "stacking"})

_EXPOSURE_EVENTS = frozenset(
    {
        CameraEvent.EXPOSURE_FLUSHING,
        CameraEvent.EXPOSURE_INTEGRATING,
        CameraEvent.EXPOSURE_READING,
        CameraEvent.EXPOSURE_READ,
        CameraEvent.EXPOSURE_STOPPED,
        CameraEvent.EXPOSURE_POST_PROCESSING,
        CameraEvent.EXPOSURE_WRITING,
        CameraEvent.EXPOSURE_DONE,
        CameraEvent.EXPOSURE_FAILED,
        CameraEvent.EXPOSURE_ABORTED,
    }
)

_TEMPERATURE_EVENTS = frozenset(
    {
        CameraEvent.NEW_SET_POINT,
        CameraEvent.SET_POINT_REACHED,
        CameraEvent.SET_POINT_FAILED,
    }
)


class EventBridge:
    """Broadcasts camera events as keywords of ``actor``.

    Parameters
    ----------
    actor
        The camera actor.
    interval
        Seconds between ``exposure_state`` updates while a camera is busy.
    """

    def __init__(self, actor: BaseCameraActor, interval: float = 0.5) -> None:
        self.actor = actor
        self.interval = interval
        self.listener: EventListener | None = None
        self._tickers: dict[str, asyncio.Task] = {}
        #: What the last event-driven exposure_state of each camera said.
        self._last_state: dict[str, tuple[Any, ...]] = {}

    def start(self) -> None:
        """Subscribes to the camera system notifier."""
        if self.listener is not None:
            return
        self.listener = EventListener()
        self.listener.register_callback(self._handle)
        self.actor.camera_system.notifier.register_listener(self.listener)

    async def stop(self) -> None:
        """Unsubscribes and stops the periodic updates."""
        for task in self._tickers.values():
            task.cancel()
        for task in list(self._tickers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tickers.clear()
        if self.listener is not None:
            self.actor.camera_system.notifier.remove_listener(self.listener)
            await self.listener.stop_listening()
            self.listener = None

    def exposure_state(self, camera_name: str, payload: dict[str, Any] | None = None):
        """Builds the ``exposure_state`` keyword for a camera."""
        if payload is not None:
            state = dict(payload)  # the progress when the event happened
        else:
            camera = self.actor.camera_system.get_camera(name=camera_name)
            state = camera.progress.to_dict() if camera else {"camera": camera_name}
        sequence = self.actor.sequences.get(camera_name)
        state["count_n"] = 0 if sequence is None else sequence.current
        state["count_total"] = 0 if sequence is None else sequence.total
        keys = (
            "camera exposure_id phase image_type exptime elapsed remaining total "
            "stack_n stack_total count_n count_total error"
        ).split()
        return to_json({key: state.get(key) for key in keys})

    def publish_state(self, camera_name: str, payload: dict | None = None) -> None:
        """Broadcasts the current ``exposure_state`` of a camera."""
        self.actor.write(
            "i",
            {"exposure_state": self.exposure_state(camera_name, payload)},
            broadcast=True,
            write_to_log=False,
        )

    async def _ticker(self, camera_name: str) -> None:
        camera = self.actor.camera_system.get_camera(name=camera_name)
        while camera and camera.progress.phase.value in LIVE_PHASES:
            await asyncio.sleep(self.interval)
            if camera.progress.phase.value in LIVE_PHASES:
                self.publish_state(camera_name)

    def _news(self, camera_name: str, payload: dict[str, Any]) -> bool:
        """Whether an exposure event changes what exposure_state says.

        Events about a frame written in the background (the camera has moved
        on to the next exposure) are not the camera's state, and an event that
        leaves the phase, frame and counts as they were (e.g. "read" while
        still reading) would repeat the last state: neither is published.
        """
        camera = self.actor.camera_system.get_camera(name=camera_name)
        current = camera.progress.exposure_id if camera else None
        if payload.get("exposure_id") not in (None, current):
            return False
        sequence = self.actor.sequences.get(camera_name)
        key = (
            payload.get("exposure_id"),
            payload.get("phase"),
            payload.get("stack_n"),
            payload.get("error"),
            None if sequence is None else (sequence.current, sequence.total),
        )
        if self._last_state.get(camera_name) == key:
            return False
        self._last_state[camera_name] = key
        return True

    def _ensure_ticker(self, camera_name: str) -> None:
        task = self._tickers.get(camera_name)
        if task is None or task.done():
            self._tickers[camera_name] = asyncio.get_running_loop().create_task(
                self._ticker(camera_name)
            )

    async def _handle(self, event: enum.Enum, payload: dict[str, Any]) -> None:
        camera_name = payload.get("camera")
        write = self.actor.write
        if event is CameraEvent.CAMERA_CONNECTED:
            write(
                "i",
                camera_connected={"camera": camera_name, "uid": payload.get("uid")},
                broadcast=True,
            )
        elif event is CameraEvent.CAMERA_DISCONNECTED:
            write(
                "w",
                camera_disconnected={
                    "camera": camera_name,
                    "uid": payload.get("uid"),
                    "error": payload.get("error"),
                },
                broadcast=True,
            )
        elif event is CameraEvent.CAMERA_CONNECT_FAILED:
            write(
                "w",
                error={"camera": camera_name, "error": payload.get("error")},
                broadcast=True,
            )
        elif event in _EXPOSURE_EVENTS and camera_name is not None:
            if self._news(camera_name, payload):
                self.publish_state(camera_name, payload)
            if payload.get("phase") in LIVE_PHASES:
                self._ensure_ticker(camera_name)
        elif event in (CameraEvent.EXPOSURE_WRITTEN, CameraEvent.EXPOSURE_SPOOLED):
            spooled = event is CameraEvent.EXPOSURE_SPOOLED
            if camera_name not in self.actor.sequences:  # else expose reports it
                write(
                    "w" if spooled else "i",
                    filename=to_json(
                        {
                            "camera": camera_name,
                            "exposure_id": payload.get("exposure_id"),
                            "filename": payload.get("filename"),
                            "path": payload.get("path"),
                            "datasum": payload.get("datasum"),
                            "checksum": payload.get("checksum"),
                            "spooled": spooled,
                        }
                    ),
                    broadcast=True,
                )
            if spooled:
                write(
                    "w",
                    error={
                        "camera": camera_name,
                        "error": f"frame spooled to {payload.get('path')}: "
                        f"{payload.get('error')}; send 'recover' once its "
                        "directory is writable",
                    },
                    broadcast=True,
                )
        elif event in _TEMPERATURE_EVENTS and camera_name is not None:
            await self._publish_temperature(camera_name, event, payload)

    async def _publish_temperature(
        self, camera_name: str, event: enum.Enum, payload: dict[str, Any]
    ) -> None:
        camera = self.actor.camera_system.get_camera(name=camera_name)
        if not camera or not isinstance(camera, CoolerMixIn) or not camera.connected:
            return
        try:
            status = await camera.cooler_status()
        except Exception as err:  # the device may be gone; say so, never crash
            status = {
                "ccd_temp": None,
                "set_point": payload.get("set_point"),
                "cooler_power": None,
                "ramping": False,
                "reached": False,
                "error": str(err),
            }
        if event is CameraEvent.SET_POINT_REACHED:
            status["reached"] = True
        code = "w" if event is CameraEvent.SET_POINT_FAILED else "i"
        self.actor.write(
            code, temperature=to_json({"camera": camera_name, **status}), broadcast=True
        )
