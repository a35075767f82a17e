"""A simulated camera system and camera, with fault injection.

`SimulatedCamera` implements every mix-in with real state and produces frames
with `~camera_core.simframes.FrameSynthesizer`. Its parameters come from the
``simulator`` section at the top of the configuration (defaults for every
camera), overridden by the ``simulator`` section of the camera entry::

    simulator: {width: 2048, height: 2048, time_factor: 1.0, fast_noise: true}
    cameras:
      sim1:
        uid: SIM-0001
        simulator: {seed: 1, faults: {write_failure: {errno: ENOSPC, count: 2}}}

Faults can be injected from the configuration (``faults``) or at run time with
`SimulatedCamera.inject_fault`; see `~camera_core.simfaults.FAULTS` for the
names and parameters. Faults belong to the simulated device: those of the
configuration act from its first connection on (``connect_failure`` at start-up
leaves the camera disconnected and the poller retrying), and a camera removed
and added again finds them as they were left. Both sections are checked when
the system is built.
"""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import threading
import zlib
from collections.abc import Mapping
from typing import Any

from .camera import BaseCamera, CameraSystem
from .events import CameraEvent
from .exceptions import CameraConnectionError, CameraError
from .mixins import (
    CoolerMixIn,
    ExposureTypeMixIn,
    GainMixIn,
    ImageAreaMixIn,
    ShutterMixIn,
)
from .simconfig import SIMULATOR_DEFAULTS, SYNTH_KEYS, check_params, merged_params
from .simfaults import FAULTS, FaultSet
from .simframes import FrameSynthesizer, ThermalModel

__all__ = ["FAULTS", "SIMULATOR_DEFAULTS", "SimulatedCamera", "SimulatedCameraSystem"]


class SimulatedCameraSystem(CameraSystem):
    """A camera system whose cameras are the entries of the configuration.

    Every entry of ``cameras`` with a ``uid`` is a simulated camera plugged into
    the system unless its ``simulator`` key is ``false``. Cameras can be
    unplugged and replugged to simulate USB or network failures.
    """

    __version__ = "0.1.0"

    def __init__(self, camera_class: type | None = None, *args: Any, **kwargs: Any):
        super().__init__(
            SimulatedCamera if camera_class is None else camera_class, *args, **kwargs
        )

    def setup(self) -> SimulatedCameraSystem:
        """Checks every simulated camera's parameters and faults now.

        A mistyped key or fault in ``simulator`` sections fails here, when the
        system is built, instead of when the poller adds the camera.

        Raises
        ------
        ValueError
            Naming the camera and the problem.
        """
        self._unplugged: set[str] = set()
        self._device_faults: dict[str, FaultSet] = {}
        check_params(self._camera_config, self.config)
        return self

    def device_faults(self, uid: str, configured: Mapping[str, Any]) -> FaultSet:
        """The faults of the simulated device ``uid``.

        They belong to the device, not to the camera object: a camera removed
        and added again (unplugged, then plugged back) finds the faults as they
        were left, and the ``configured`` ones are injected only the first time.
        """
        faults = self._device_faults.get(uid)
        if faults is None:
            faults = self._device_faults[uid] = FaultSet()
            for name, params in configured.items():
                faults.add(name, **params)
        return faults

    @property
    def unplugged(self) -> frozenset[str]:
        """UIDs of the cameras currently unplugged."""
        return frozenset(self._unplugged)

    def unplug(self, uid: str) -> None:
        """Makes the camera ``uid`` vanish from `list_available_cameras`."""
        self._unplugged.add(uid)

    def replug(self, uid: str) -> None:
        """Makes the camera ``uid`` available again."""
        self._unplugged.discard(uid)

    def list_available_cameras(self) -> list[str]:
        """Returns the UIDs of the configured simulated cameras still plugged."""
        uids = []
        for params in (self.config.get("cameras") or {}).values():
            params = params or {}
            if params.get("uid") is None or params.get("simulator", True) is False:
                continue
            if params["uid"] not in self._unplugged:
                uids.append(str(params["uid"]))
        return uids


class SimulatedCamera(
    CoolerMixIn, ShutterMixIn, ImageAreaMixIn, ExposureTypeMixIn, GainMixIn, BaseCamera
):
    """A simulated camera with a cooler, shutter, binning, ROI and gain.

    Waits are real `asyncio.sleep` calls scaled by ``time_factor``; frames are
    synthesised in an executor. See the module docstring for configuration.
    """

    __version__ = "0.1.0"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        params = merged_params(self.camera_params, self._system_config())
        self._sim_params = params
        system = self.camera_system
        self._faults = (
            system.device_faults(self.uid, params["faults"])
            if isinstance(system, SimulatedCameraSystem)
            else FaultSet()
        )
        self._sim_hang: asyncio.Event | None = None
        self._frame_lock = threading.Lock()
        self._synth: FrameSynthesizer | None = None
        self._synth_params: dict[str, Any] = {}
        self.thermal: ThermalModel | None = None
        self._shutter = False
        self._binning = (1, 1)
        self._area: tuple[int, int, int, int] | None = None
        self._gain = float(params["gain"])
        self._offset = int(params["offset"])
        self._readout_mode = str(next(iter(params["readout_modes"])))
        if not isinstance(system, SimulatedCameraSystem):
            for name, fault_params in params["faults"].items():
                self._faults.add(name, **fault_params)
        if "write_failure" in self._faults:
            self.write_fault = self._write_fault_hook

    def _system_config(self) -> Mapping[str, Any]:
        return getattr(self.camera_system, "config", None) or {}

    # Faults.

    @property
    def faults(self) -> Mapping[str, Mapping[str, Any]]:
        """The active faults and their parameters (a read-only copy)."""
        return self._faults.view()

    def inject_fault(self, name: str, **params: Any) -> None:
        """Activates a fault (replacing it if already active).

        Parameters
        ----------
        name
            One of the keys of `~camera_core.simfaults.FAULTS`.
        params
            The fault's parameters; missing ones take their default.

        Raises
        ------
        ValueError
            If the fault or a parameter is unknown or invalid.
        """
        values = self._faults.add(name, **params)
        if name == "cooler_never_settles" and self.thermal is not None:
            self.thermal.stall_offset = float(values["offset"])
            self.thermal.never_settle = True
        elif name == "write_failure":
            self.write_fault = self._write_fault_hook

    def clear_faults(self, name: str | None = None) -> None:
        """Clears one fault, or all if ``name`` is `None`.

        Clearing ``unplug`` replugs the camera; clearing ``readout_timeout``
        lets a hung readout finish.
        """
        names = self._faults.remove(name)
        if "cooler_never_settles" in names and self.thermal is not None:
            self.thermal.never_settle = False
        if "write_failure" in names:
            self.write_fault = None
        if "readout_timeout" in names and self._sim_hang is not None:
            self._sim_hang.set()
        if "unplug" in names:
            self._plug(True)

    def replug(self) -> None:
        """Plugs the camera back in (it must then be connected again)."""
        self.clear_faults("unplug")

    @property
    def plugged(self) -> bool:
        """Whether the camera is plugged into the system."""
        return self.uid not in getattr(self.camera_system, "unplugged", ())

    def _plug(self, plugged: bool) -> None:
        system = self.camera_system
        if isinstance(system, SimulatedCameraSystem):
            (system.replug if plugged else system.unplug)(self.uid)

    def _write_fault_hook(self, path: pathlib.Path, is_spool: bool) -> None:
        """The writer's fault hook: raises OSError while write_failure is active."""
        fault = self._faults.consume("write_failure", spool=is_spool)
        if "write_failure" not in self._faults:
            self.write_fault = None
        if fault is not None:
            code = getattr(errno, str(fault["errno"]))
            raise OSError(code, f"{os.strerror(code)} (simulated)", str(path))

    # Connection.

    async def _connect_internal(self, **connection_params: Any) -> None:
        uid = connection_params.get("uid", self.uid)
        if uid != self.uid:
            raise CameraConnectionError(f"No simulated camera with uid {uid!r}.")
        if not self.plugged:
            raise CameraConnectionError(f"Camera {self.uid} is unplugged.")
        if self._faults.consume("connect_failure") is not None:
            raise CameraConnectionError(f"Simulated connection failure ({self.uid}).")
        p = self._sim_params = merged_params(self.camera_params, self._system_config())
        if p["time_factor"] is not None:
            self.time_factor = float(p["time_factor"])
        width, height = int(p["width"]), int(p["height"])
        synth_params = {key: p[key] for key in SYNTH_KEYS}
        synth_params.update(
            width=width,
            height=height,
            seed=zlib.crc32(self.uid.encode()) if p["seed"] is None else p["seed"],
            fast=bool(p["fast_noise"]),
        )
        if p["n_stars"] is None:  # ~100 stars per megapixel
            synth_params["n_stars"] = max(5, int(100 * width * height / 1e6))
        if self._synth is None or self._synth_params != synth_params:
            self._synth = FrameSynthesizer(**synth_params)
            self._synth_params = synth_params
            await self.loop.run_in_executor(None, self._synth.prepare)
        if self.thermal is None:  # the sensor keeps its temperature on reconnect
            self.thermal = ThermalModel(
                ambient=p["ambient"], rate=p["cooling_rate"], min_temp=p["min_temp"],
                time_factor=self.time_factor,
            )  # fmt: skip
        else:
            _ = self.thermal.temperature  # settle the past at the old time factor
            self.thermal.time_factor = self.time_factor
        fault = self._faults.get("cooler_never_settles")
        if fault is not None:
            self.thermal.stall_offset = float(fault["offset"])
            self.thermal.never_settle = True
        self.limits.update(
            width=width, height=height, max_binning=tuple(p["max_binning"]),
            exptime_min=0.0, exptime_max=3600.0, gains=[float(g) for g in p["gains"]],
            offset_min=int(p["offset_min"]), offset_max=int(p["offset_max"]),
            readout_modes=[str(m) for m in p["readout_modes"]],
            temperature_min=float(p["min_temp"]), temperature_max=float(p["max_temp"]),
            pixel_size=tuple(float(s) for s in p["pixel_size"]),
        )  # fmt: skip

    async def _disconnect_internal(self) -> None:
        self._shutter = False

    # Exposing.

    async def _expose_internal(self, exposure: Any, **kwargs: Any) -> Any:
        synth, thermal, p = self._synth, self.thermal, self._sim_params
        assert synth is not None and thermal is not None
        tf = self.time_factor
        await asyncio.sleep(float(p["flush_time"]) * tf)  # base notified FLUSHING
        self._shutter = bool(exposure.shutter_open)
        try:
            unplug = self.faults.get("unplug")
            if unplug is not None:
                self._notify(CameraEvent.EXPOSURE_INTEGRATING)
                await asyncio.sleep(float(exposure.exptime) * unplug["after"] * tf)
                self._plug(False)
                error = f"Camera {self.name} ({self.uid}) vanished during the exposure."
                self.connection_lost(error)
                raise CameraConnectionError(error)
            await self._integrate(exposure)
        finally:
            self._shutter = False

        self._notify(CameraEvent.EXPOSURE_READING)
        modes = list(self.limits.readout_modes or [])
        mode_index = (
            modes.index(self._readout_mode) if self._readout_mode in modes else 0
        )
        x0, x1, y0, y1 = self._area or (1, synth.width, 1, synth.height)
        hbin, vbin = self._binning
        fraction = ((x1 - x0 + 1) // hbin) * ((y1 - y0 + 1) // vbin)
        fraction /= synth.width * synth.height
        readout = float(p["readout_time"]) / 2**mode_index * max(fraction, 0.05)
        settings = {"gain": self._gain, "bias": float(self._offset)}
        settings["read_noise"] = float(p["read_noise"]) * (1.0 + 0.5 * mode_index)
        frame = self.loop.run_in_executor(
            None, self._synthesise, settings, float(exposure.exptime),
            exposure.image_type, thermal.temperature, self._binning, self._area,
            exposure.shutter_open,
        )  # fmt: skip
        if self._faults.consume("readout_timeout") is not None:
            self._sim_hang = asyncio.Event()
            await self._sim_hang.wait()  # until the base timeout cancels us
        await asyncio.sleep(readout * tf)
        exposure.data = await frame
        return exposure

    def _synthesise(self, settings: dict[str, float], *args: Any) -> Any:
        """Makes a frame (blocking, in a worker thread).

        The lock serialises frames: a frame of an aborted or timed-out exposure
        may still be computing when the next one starts.
        """
        with self._frame_lock:
            synth = self._synth
            assert synth is not None
            for key, value in settings.items():
                setattr(synth, key, value)
            return synth.frame(*args)

    async def _abort_internal(self) -> None:
        self._shutter = False

    async def _stop_internal(self) -> None:
        """Nothing to do: `_integrate` returns when stop() is requested."""

    def _status_internal(self) -> dict[str, Any]:
        thermal = self.thermal
        return {
            "temperature": None if thermal is None else round(thermal.temperature, 3),
            "cooler_power": None if thermal is None else round(thermal.cooler_power, 1),
            "set_point": None if thermal is None else thermal.set_point,
            "shutter": self._shutter,
            "binning": list(self._binning),
            "area": list(self._area or (1, self.limits.width, 1, self.limits.height)),
            "gain": self._gain,
            "offset": self._offset,
            "readout_mode": self._readout_mode,
            "model": "SimulatedCamera",
            "firmware": self.__version__,
            "fast_noise": bool(self._sim_params["fast_noise"]),
            "faults": sorted(self.faults),
            "plugged": self.plugged,
        }

    # Mix-in internals.

    def _thermal(self) -> ThermalModel:
        if self.thermal is None:
            raise CameraError(f"Camera {self.name} is not connected.")
        return self.thermal

    async def _get_temperature_internal(self) -> float:
        return self._thermal().temperature

    async def _set_temperature_internal(self, temperature: float | None) -> None:
        self._thermal().set_point = temperature

    async def _get_cooler_power_internal(self) -> float:
        return self._thermal().cooler_power

    async def _get_shutter_internal(self) -> bool:
        return self._shutter

    async def _set_shutter_internal(self, shutter_open: bool) -> None:
        await asyncio.sleep(0.05 * self.time_factor)  # the shutter takes time
        self._shutter = bool(shutter_open)

    async def _get_binning_internal(self) -> tuple[int, int]:
        return self._binning

    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        max_h, max_v = self.limits.max_binning or (hbin, vbin)
        if not (1 <= hbin <= max_h and 1 <= vbin <= max_v):
            raise CameraError(f"Binning ({hbin}, {vbin}) exceeds ({max_h}, {max_v}).")
        self._binning = (int(hbin), int(vbin))

    async def _get_image_area_internal(self) -> tuple[int, int, int, int]:
        width, height = self.limits.width or 0, self.limits.height or 0
        return self._area or (1, width, 1, height)

    async def _set_image_area_internal(
        self, area: tuple[int, int, int, int] | None = None
    ) -> None:
        if area is None:
            self._area = None
            return
        x0, x1, y0, y1 = (int(v) for v in area)
        width, height = self.limits.width or 0, self.limits.height or 0
        if not (1 <= x0 <= x1 <= width and 1 <= y0 <= y1 <= height):
            raise CameraError(f"Area {area} is outside the {width}x{height} sensor.")
        full = (x0, x1, y0, y1) == (1, width, 1, height)
        self._area = None if full else (x0, x1, y0, y1)

    async def _get_gain_internal(self) -> float:
        return self._gain

    async def _set_gain_internal(self, gain: float) -> None:
        self._gain = float(gain)

    async def _get_offset_internal(self) -> int:
        return self._offset

    async def _set_offset_internal(self, offset: int) -> None:
        self._offset = int(offset)

    async def _get_readout_mode_internal(self) -> str:
        return self._readout_mode

    async def _set_readout_mode_internal(self, mode: str) -> None:
        if self.limits.readout_modes and mode not in self.limits.readout_modes:
            raise CameraError(f"Unknown readout mode {mode!r}.")
        self._readout_mode = mode
