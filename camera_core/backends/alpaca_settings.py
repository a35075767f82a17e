"""Frame, cooler, gain, offset and readout-mode internals of `AlpacaCamera`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from camera_core.exceptions import CameraError

if TYPE_CHECKING:
    from camera_core.capabilities import CameraLimits

    from .alpaca_device import AlpacaInfo
    from .alpaca_protocol import AlpacaCameraDevice

__all__ = ["AlpacaSettingsMixIn"]

T = TypeVar("T")


class AlpacaSettingsMixIn:
    """The ``_*_internal`` hooks of the frame, cooler and gain mix-ins over Alpaca.

    Gain, Offset and ReadoutMode are device indices when the camera lists
    ``Gains``/``Offsets``/``ReadoutModes`` (see `.IndexedSetting`: gain and
    offset are the listed numbers, or positions for names such as "Low") and
    numbers when it has ``GainMin``/``GainMax`` (or the offset equivalents).
    Every value set is remembered in ``_wanted`` and restored after a
    reconnection.
    """

    name: str
    info: AlpacaInfo | None
    limits: CameraLimits
    _wanted: dict[str, Any]
    _device_status: dict[str, Any]
    _binning: tuple[int, int]
    _area: tuple[int, int, int, int] | None

    if TYPE_CHECKING:  # provided by AlpacaCamera

        def _require_device(self) -> AlpacaCameraDevice: ...

        async def _call(self, what: str, func: Callable[..., T], *args: Any) -> T: ...

        async def _read(self, name: str) -> Any: ...

        async def _put(self, name: str, value: Any) -> None: ...

    # Frame geometry.

    def _frame(
        self, binning: tuple[int, int], area: tuple[int, int, int, int] | None
    ) -> tuple[int, int, int, int]:
        """Alpaca ``(StartX, StartY, NumX, NumY)`` (binned, 0-based) of an area."""
        width, height = self.limits.width or 0, self.limits.height or 0
        x0, x1, y0, y1 = area or (1, width, 1, height)
        hbin, vbin = binning
        start_x, start_y = (x0 - 1) // hbin, (y0 - 1) // vbin
        num_x, num_y = (x1 - x0 + 1) // hbin, (y1 - y0 + 1) // vbin
        if num_x < 1 or num_y < 1:
            raise CameraError(
                f"Area {area} is smaller than one {hbin}×{vbin} binned pixel."
            )
        return start_x, start_y, num_x, num_y

    async def _push_frame(
        self, binning: tuple[int, int], frame: tuple[int, int, int, int]
    ) -> None:
        device = self._require_device()
        values = {
            "BinX": binning[0],
            "BinY": binning[1],
            "StartX": frame[0],
            "StartY": frame[1],
            "NumX": frame[2],
            "NumY": frame[3],
        }

        def push() -> None:
            for name, value in values.items():  # binning first: it rescales Num
                setattr(device, name, value)

        await self._call(f"setting the frame {values}", push)
        self._device_status.update(
            binning=list(binning), frame=[frame[0], frame[1], frame[2], frame[3]]
        )

    async def _get_binning_internal(self) -> tuple[int, int]:
        return self._binning

    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        info = self.info
        if info is not None and hbin != vbin and not info.can_asymmetric_bin:
            raise CameraError(
                f"Camera {self.name} cannot bin asymmetrically ({hbin}×{vbin})."
            )
        binning = (int(hbin), int(vbin))
        await self._push_frame(binning, self._frame(binning, self._area))
        self._binning = binning

    def _effective_area(self) -> tuple[int, int, int, int]:
        """The area the camera reads: the requested one rounded to the binning."""
        hbin, vbin = self._binning
        start_x, start_y, num_x, num_y = self._frame(self._binning, self._area)
        return (
            start_x * hbin + 1,
            (start_x + num_x) * hbin,
            start_y * vbin + 1,
            (start_y + num_y) * vbin,
        )

    async def _get_image_area_internal(self) -> tuple[int, int, int, int]:
        return self._effective_area()

    async def _set_image_area_internal(
        self, area: tuple[int, int, int, int] | None = None
    ) -> None:
        area = None if area is None else tuple(int(v) for v in area)  # type: ignore[assignment]
        await self._push_frame(self._binning, self._frame(self._binning, area))
        self._area = area

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
        raw = int(await self._read("Offset"))
        offsets = info.offsets
        value = raw if offsets is None else int(offsets.value(raw, "offset"))
        self._device_status["offset"] = value
        return value

    async def _set_offset_internal(self, offset: int) -> None:
        info = self.info
        if info is not None and info.offsets is not None:
            raw = info.offsets.index(offset)
        elif info is not None and info.offset_range is not None:
            raw = int(offset)
        else:
            raise CameraError(f"Camera {self.name} has no adjustable offset.")
        await self._put("Offset", raw)
        self._wanted["Offset"] = raw

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
