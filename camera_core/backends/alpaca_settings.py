"""Cooler, gain, offset and readout-mode internals of `AlpacaCamera`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from camera_core.exceptions import CameraError

if TYPE_CHECKING:
    from .alpaca_device import AlpacaInfo

__all__ = ["AlpacaSettingsMixIn"]


class AlpacaSettingsMixIn:
    """The ``_*_internal`` hooks of the cooler and gain mix-ins over Alpaca.

    Gain, Offset and ReadoutMode are device indices when the camera lists
    ``Gains``/``Offsets``/``ReadoutModes`` (see `.IndexedSetting`) and numbers
    when it has ``GainMin``/``GainMax`` (or the offset equivalents). Every value
    set is remembered in ``_wanted`` and restored after a reconnection.
    """

    name: str
    info: AlpacaInfo | None
    _wanted: dict[str, Any]
    _device_status: dict[str, Any]

    if TYPE_CHECKING:  # provided by AlpacaCamera

        async def _read(self, name: str) -> Any: ...

        async def _put(self, name: str, value: Any) -> None: ...

    # Cooler.

    async def _get_temperature_internal(self) -> float:
        value = float(await self._read("CCDTemperature"))
        self._device_status["ccd_temp"] = value
        return value

    async def _set_temperature_internal(self, temperature: float) -> None:
        info = self.info
        if info is not None and not info.can_set_ccd_temperature:
            raise CameraError(
                f"Camera {self.name} cannot set its CCD temperature "
                "(CanSetCCDTemperature is false)."
            )
        await self._put("SetCCDTemperature", float(temperature))
        self._wanted["SetCCDTemperature"] = float(temperature)
        if not await self._read("CoolerOn"):
            await self._put("CoolerOn", True)
        self._wanted["CoolerOn"] = True
        self._device_status.update(set_point=float(temperature), cooler_on=True)

    async def _get_cooler_power_internal(self) -> float | None:
        if self.info is None or not self.info.can_get_cooler_power:
            return None
        value = float(await self._read("CoolerPower"))
        self._device_status["cooler_power"] = value
        return value

    # Gain, offset and readout mode.

    async def _get_gain_internal(self) -> float:
        info = self.info
        if info is not None and info.gains is None and info.gain_range is None:
            raise CameraError(f"Camera {self.name} has no adjustable gain.")
        raw = int(await self._read("Gain"))
        gains = None if info is None else info.gains
        value = float(raw) if gains is None else gains.value(raw, "gain")
        self._device_status["gain"] = value
        return value

    async def _set_gain_internal(self, gain: float) -> None:
        info = self.info
        if info is not None and info.gains is not None:
            raw = info.gains.index(gain)
        elif info is not None and info.gain_range is not None:
            if gain != int(gain):
                raise CameraError(
                    f"Gain must be an integer for this camera, not {gain}."
                )
            raw = int(gain)
        else:
            raise CameraError(f"Camera {self.name} has no adjustable gain.")
        await self._put("Gain", raw)
        self._wanted["Gain"] = raw

    async def _get_offset_internal(self) -> int | None:
        info = self.info
        if info is None or (info.offsets is None and info.offset_range is None):
            return None
        value = int(await self._read("Offset"))
        self._device_status["offset"] = value
        return value

    async def _set_offset_internal(self, offset: int) -> None:
        info = self.info
        if info is None or (info.offsets is None and info.offset_range is None):
            raise CameraError(f"Camera {self.name} has no adjustable offset.")
        await self._put("Offset", int(offset))
        self._wanted["Offset"] = int(offset)

    async def _get_readout_mode_internal(self) -> str | None:
        info = self.info
        if info is None or not info.readout_modes:
            return None
        index = int(await self._read("ReadoutMode"))
        if not 0 <= index < len(info.readout_modes):
            raise CameraError(
                f"The camera reports readout mode {index}, outside its list "
                f"{list(info.readout_modes)}."
            )
        self._device_status["readout_mode"] = info.readout_modes[index]
        return info.readout_modes[index]

    async def _set_readout_mode_internal(self, mode: str) -> None:
        info = self.info
        if info is None or not info.readout_modes:
            raise CameraError(f"Camera {self.name} has no selectable readout modes.")
        index = info.readout_modes.index(mode)
        await self._put("ReadoutMode", index)
        self._wanted["ReadoutMode"] = index
