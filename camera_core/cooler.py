"""The cooler mix-in: set points with ramps and settle timeouts."""

from __future__ import annotations

import abc
import asyncio
import math
from typing import TYPE_CHECKING, Any

from .events import CameraEvent
from .exceptions import CameraError
from .validation import number as _number

if TYPE_CHECKING:
    from .camera import BaseCamera

__all__ = ["CoolerMixIn"]


class CoolerMixIn(metaclass=abc.ABCMeta):
    """Methods to control the cooling system of the camera.

    Configuration (camera parameters): ``temperature_tolerance`` (°C, default
    0.5), ``temperature_poll_interval`` (s, default 1), ``cooling_timeout`` (s,
    default 900, the settle timeout when none is given).
    """

    _set_point: float | None = None
    _ramping: bool = False
    _set_point_reached: bool = False
    _set_point_generation: int = 0

    @abc.abstractmethod
    async def _get_temperature_internal(self) -> float:
        """Returns the temperature the cooler acts on, in °C."""

    @abc.abstractmethod
    async def _set_temperature_internal(self, temperature: float) -> None:
        """Commands a new set point (°C) and returns at once."""

    async def _get_cooler_power_internal(self) -> float | None:
        """Returns the cooler power in percent, if the device reports it."""
        return None

    async def get_temperature(self) -> float:
        """Returns the current CCD temperature, in °C."""
        return float(await self._get_temperature_internal())

    async def get_cooler_power(self) -> float | None:
        """Returns the cooler power in percent, or `None` if unknown."""
        power = await self._get_cooler_power_internal()
        return None if power is None else float(power)

    @property
    def set_point(self) -> float | None:
        """The last commanded set point, in °C (`None` if never set)."""
        return self._set_point

    async def set_temperature(
        self: Any,
        temperature: float,
        ramp: float | None = None,
        timeout: float | None = None,
        tolerance: float | None = None,
    ) -> bool:
        """Sets a new temperature goal and waits until it is reached.

        Emits ``NEW_SET_POINT`` when the set point is commanded and
        ``SET_POINT_REACHED`` when the temperature is within ``tolerance``. On
        timeout emits ``SET_POINT_FAILED`` and raises. Never waits forever.

        Parameters
        ----------
        temperature
            The goal temperature, in °C. 0 °C is a valid set point.
        ramp
            Ramp rate in °C per minute. The commanded set point moves towards
            ``temperature`` at this rate. `None` sets it at once.
        timeout
            Seconds (camera time) to wait for the set point, ramp included.
            Defaults to the camera's ``cooling_timeout``.
        tolerance
            How close, in °C, counts as reached. Defaults to the camera's
            ``temperature_tolerance``.

        Returns
        -------
        reached
            `True` when reached, `False` if another call changed the set point
            while this one was waiting.

        Raises
        ------
        CameraError
            If the value is invalid, the device fails, or the timeout expires.
        """
        camera: BaseCamera = self
        temperature = _number(temperature, "Temperature")
        limits = camera.limits
        low, high = limits.temperature_min, limits.temperature_max
        if (low is not None and temperature < low) or (
            high is not None and temperature > high
        ):
            raise CameraError(
                f"Set point {temperature} °C is outside the camera range "
                f"[{low}, {high}] °C."
            )
        if ramp is not None and _number(ramp, "Ramp rate") <= 0:
            raise CameraError(f"Ramp rate must be positive (°C/min), not {ramp}.")
        params = camera.camera_params
        tolerance = float(
            params.get("temperature_tolerance", 0.5) if tolerance is None else tolerance
        )
        timeout = float(
            params.get("cooling_timeout", 900.0) if timeout is None else timeout
        )
        if timeout <= 0:
            raise CameraError(f"Timeout must be positive, not {timeout}.")
        interval = float(params.get("temperature_poll_interval", 1.0))

        self._set_point_generation += 1
        generation = self._set_point_generation
        self._set_point = temperature
        self._set_point_reached = False
        self._ramping = ramp is not None
        camera._notify(
            CameraEvent.NEW_SET_POINT, {"set_point": temperature, "ramp": ramp}
        )
        try:
            await asyncio.wait_for(
                self._reach(temperature, ramp, tolerance, interval, generation),
                timeout * camera.time_factor,
            )
        except TimeoutError:
            if generation != self._set_point_generation:
                return False
            current = await self.get_temperature()
            error = (
                f"Set point {temperature} °C not reached within {timeout:g} s "
                f"(CCD at {current:.2f} °C). Check the cooler, or allow a longer "
                "timeout."
            )
            camera._notify(
                CameraEvent.SET_POINT_FAILED,
                {"set_point": temperature, "ccd_temp": current, "error": error},
            )
            raise CameraError(error) from None
        except CameraError as err:
            camera._notify(
                CameraEvent.SET_POINT_FAILED,
                {"set_point": temperature, "error": str(err)},
            )
            raise
        finally:
            if generation == self._set_point_generation:
                self._ramping = False
        if generation != self._set_point_generation:
            return False
        self._set_point_reached = True
        camera._notify(
            CameraEvent.SET_POINT_REACHED,
            {"set_point": temperature, "ccd_temp": await self.get_temperature()},
        )
        return True

    async def _reach(
        self: Any,
        target: float,
        ramp: float | None,
        tolerance: float,
        interval: float,
        generation: int,
    ) -> None:
        camera: BaseCamera = self
        wall_interval = max(interval * camera.time_factor, 0.005)
        if ramp is None:
            await self._set_temperature_internal(target)
        else:
            start = await self.get_temperature()
            t0 = camera.loop.time()
            while generation == self._set_point_generation:
                minutes = (camera.loop.time() - t0) / camera.time_factor / 60.0
                step = ramp * minutes
                done = step >= abs(target - start)
                commanded = (
                    target if done else start + math.copysign(step, target - start)
                )
                await self._set_temperature_internal(commanded)
                if done:
                    break
                await asyncio.sleep(wall_interval)
        while generation == self._set_point_generation:
            if abs(await self.get_temperature() - target) <= tolerance:
                return
            await asyncio.sleep(wall_interval)

    async def cooler_status(self) -> dict[str, Any]:
        """Returns the CCD temperature, set point, cooler power and ramp state."""
        return {
            "ccd_temp": await self.get_temperature(),
            "set_point": self._set_point,
            "cooler_power": await self.get_cooler_power(),
            "ramping": self._ramping,
            "reached": self._set_point_reached,
        }
