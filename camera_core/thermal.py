"""A thermal model of a thermo-electric cooler for the simulated camera.

`ThermalModel` simulates a cooler that approaches its set point at a finite
rate. Like `camera_core.simframes`, it knows nothing about asyncio or about
cameras; it is computed lazily from a clock, so it needs no task or thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["ThermalModel"]


class ThermalModel:
    """A thermo-electric cooler approaching its set point at a finite rate.

    The temperature follows ``dT/dt = -(T - target) / tau`` with the rate limited
    to ``rate``: far from the target it slews linearly, close to it it approaches
    exponentially. It is computed lazily from the time elapsed since the last
    update, so no task or thread is needed.

    Parameters
    ----------
    ambient
        Ambient temperature (°C); the sensor drifts to it when the cooler is off.
    rate
        Largest rate of change (°C per simulated second), at full power.
    min_temp
        Coldest temperature the cooler can reach; lower set points stall here.
    clock
        A function returning the current time in seconds (monotonic).
    time_factor
        Wall-clock seconds per simulated second, with the same meaning as
        ``BaseCamera.time_factor``: 0.01 makes the cooler 100 times faster.
    tau
        Time constant of the final exponential approach, in simulated seconds.
    stall_offset
        How far (°C, towards ambient) from the set point the temperature stalls
        when `never_settle` is set.
    """

    def __init__(
        self,
        ambient: float = 20.0,
        rate: float = 1.0,
        min_temp: float = -40.0,
        clock: Callable[[], float] = time.monotonic,
        time_factor: float = 1.0,
        tau: float = 5.0,
        stall_offset: float = 3.0,
    ) -> None:
        if rate <= 0 or tau <= 0 or time_factor <= 0:
            raise ValueError("rate, tau and time_factor must be positive.")
        self.ambient = float(ambient)
        self.rate = float(rate)
        self.min_temp = float(min_temp)
        self.clock = clock
        self.time_factor = float(time_factor)
        self.tau = float(tau)
        self.stall_offset = float(stall_offset)
        self._temperature = self.ambient
        self._set_point: float | None = None
        self._never_settle = False
        self._last = clock()

    def _target(self) -> float:
        if self._set_point is None:
            return self.ambient
        target = max(self._set_point, self.min_temp)
        if self._never_settle:
            direction = 1.0 if self.ambient >= target else -1.0
            target += direction * self.stall_offset
        return target

    def _update(self) -> None:
        """Advances the temperature to the current time."""
        now = self.clock()
        dt = max(now - self._last, 0.0) / self.time_factor
        self._last = now
        target = self._target()
        delta = self._temperature - target
        threshold = self.rate * self.tau  # where slewing turns exponential
        if abs(delta) > threshold:
            t_slew = (abs(delta) - threshold) / self.rate
            if dt <= t_slew:
                delta -= math.copysign(self.rate * dt, delta)
                self._temperature = target + delta
                return
            delta = math.copysign(threshold, delta)
            dt -= t_slew
        self._temperature = target + delta * math.exp(-dt / self.tau)

    @property
    def temperature(self) -> float:
        """Current temperature in degrees Celsius."""
        self._update()
        return self._temperature

    @property
    def set_point(self) -> float | None:
        """The set point in °C, or `None` if the cooler is off."""
        return self._set_point

    @set_point.setter
    def set_point(self, value: float | None) -> None:
        self._update()
        self._set_point = None if value is None else float(value)

    @property
    def never_settle(self) -> bool:
        """Fault: the temperature stalls `stall_offset` °C from the set point."""
        return self._never_settle

    @never_settle.setter
    def never_settle(self, value: bool) -> None:
        self._update()
        self._never_settle = bool(value)

    @property
    def cooler_power(self) -> float:
        """Cooler power in percent (0 when off, 100 while pulling down hard)."""
        if self._set_point is None:
            return 0.0
        temperature = self.temperature
        target = self._target()
        span = max(self.ambient - self.min_temp, 1e-6)
        steady = 100.0 * (self.ambient - target) / span
        if self._never_settle or (
            self._set_point < self.min_temp and temperature - target < 0.1
        ):
            return 100.0
        excess = temperature - target
        if excess > 0:
            steady += 100.0 * excess / (self.rate * self.tau)
        return float(min(max(steady, 0.0), 100.0))
