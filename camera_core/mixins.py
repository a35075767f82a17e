"""Capability mix-ins: cooler, shutter, image area, exposure types and gain.

Each mix-in holds the policy (validation, events, timeouts) in public methods
and leaves a tiny ``_*_internal`` method for the device driver to implement.
A camera's capabilities are found through the MRO with `isinstance`.
"""

from __future__ import annotations

import abc
from typing import Any

from .cooler import CoolerMixIn
from .exceptions import CameraError
from .validation import integer as _integer
from .validation import number as _number

__all__ = [
    "CoolerMixIn",
    "ExposureTypeMixIn",
    "GainMixIn",
    "ImageAreaMixIn",
    "ShutterMixIn",
]


class ShutterMixIn(metaclass=abc.ABCMeta):
    """A mixin that provides manual control over the shutter."""

    @abc.abstractmethod
    async def _get_shutter_internal(self) -> bool:
        """Returns `True` if the shutter is open."""

    @abc.abstractmethod
    async def _set_shutter_internal(self, shutter_open: bool) -> None:
        """Opens (`True`) or closes (`False`) the shutter."""

    async def get_shutter(self) -> bool:
        """Returns `True` if the shutter is open."""
        return bool(await self._get_shutter_internal())

    async def set_shutter(self, shutter: bool, force: bool = False) -> bool:
        """Sets the position of the shutter.

        Parameters
        ----------
        shutter
            If `True` opens the shutter, otherwise closes it.
        force
            Command the shutter even if it already is in that position.

        Returns
        -------
        shutter
            The position read back after the move (`True` is open).
        """
        if not isinstance(shutter, bool):
            raise CameraError(
                f"Shutter position must be True or False, not {shutter!r}."
            )
        if force or await self.get_shutter() != shutter:
            await self._set_shutter_internal(shutter)
        return await self.get_shutter()

    async def open_shutter(self) -> bool:
        """Opens the shutter."""
        return await self.set_shutter(True)

    async def close_shutter(self) -> bool:
        """Closes the shutter."""
        return await self.set_shutter(False)


class ImageAreaMixIn(metaclass=abc.ABCMeta):
    """Allows to select the image area and binning.

    Image areas are ``(x0, x1, y0, y1)``: 1-based, inclusive, unbinned pixels.
    """

    @abc.abstractmethod
    async def _get_binning_internal(self) -> tuple[int, int]:
        """Returns the horizontal and vertical binning."""

    @abc.abstractmethod
    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        """Sets the binning."""

    @abc.abstractmethod
    async def _get_image_area_internal(self) -> tuple[int, int, int, int]:
        """Returns the image area."""

    @abc.abstractmethod
    async def _set_image_area_internal(
        self, area: tuple[int, int, int, int] | None = None
    ) -> None:
        """Sets the image area; `None` restores the full frame."""

    async def get_binning(self) -> tuple[int, int]:
        """Returns the horizontal and vertical binning."""
        hbin, vbin = await self._get_binning_internal()
        return int(hbin), int(vbin)

    async def set_binning(
        self: Any, hbin: int, vbin: int | None = None
    ) -> tuple[int, int]:
        """Sets the binning, validated against the camera's maximum.

        Parameters
        ----------
        hbin, vbin
            Binning factors (≥ 1). ``vbin`` defaults to ``hbin``.
        """
        vbin = hbin if vbin is None else vbin
        max_bin = self.limits.max_binning or (None, None)
        hbin = _integer(hbin, "Horizontal binning", 1, max_bin[0])
        vbin = _integer(vbin, "Vertical binning", 1, max_bin[1])
        await self._set_binning_internal(hbin, vbin)
        return await self.get_binning()

    async def get_image_area(self) -> tuple[int, int, int, int]:
        """Returns the image area as ``(x0, x1, y0, y1)``."""
        return tuple(int(v) for v in await self._get_image_area_internal())  # type: ignore[return-value]

    async def set_image_area(
        self: Any, area: tuple[int, int, int, int] | None = None
    ) -> tuple[int, int, int, int]:
        """Sets the image area; `None` restores the full frame.

        Parameters
        ----------
        area
            ``(x0, x1, y0, y1)``, 1-based and inclusive, with ``x0 ≤ x1`` and
            ``y0 ≤ y1`` inside the sensor.
        """
        if area is not None:
            if len(area) != 4:
                raise CameraError(
                    f"Image area needs 4 values (x0 x1 y0 y1), not {area}."
                )
            width, height = self.limits.width, self.limits.height
            x0 = _integer(area[0], "x0", 1, width)
            x1 = _integer(area[1], "x1", x0, width)
            y0 = _integer(area[2], "y0", 1, height)
            y1 = _integer(area[3], "y1", y0, height)
            area = (x0, x1, y0, y1)
        await self._set_image_area_internal(area)
        return await self.get_image_area()


class ExposureTypeMixIn:
    """Methods to take exposures with different image types.

    `~camera_core.camera.BaseCamera.expose` forces bias frames to 0 s and tells
    the driver to keep the shutter closed for bias and dark frames
    (``Exposure.shutter_open``). The methods below are shortcuts; keyword
    arguments are those of ``expose``.
    """

    async def bias(self: Any, **kwargs: Any) -> Any:
        """Takes a bias frame (0 s, shutter closed)."""
        return await self.expose(0.0, image_type="bias", **kwargs)

    async def dark(self: Any, exptime: float, **kwargs: Any) -> Any:
        """Takes a dark frame of ``exptime`` seconds (shutter closed)."""
        return await self.expose(exptime, image_type="dark", **kwargs)

    async def flat(self: Any, exptime: float, **kwargs: Any) -> Any:
        """Takes a flat frame of ``exptime`` seconds."""
        return await self.expose(exptime, image_type="flat", **kwargs)

    async def object(self: Any, exptime: float, **kwargs: Any) -> Any:
        """Takes a light (object) frame of ``exptime`` seconds."""
        return await self.expose(exptime, image_type="object", **kwargs)


class GainMixIn(metaclass=abc.ABCMeta):
    """Gain, offset and readout mode, validated against the camera limits."""

    @abc.abstractmethod
    async def _get_gain_internal(self) -> float | None:
        """Returns the gain, or `None` if it cannot be set on this device."""

    @abc.abstractmethod
    async def _set_gain_internal(self, gain: float) -> None:
        """Sets the gain."""

    async def _get_offset_internal(self) -> int | None:
        """Returns the offset, if the camera has one."""
        return None

    async def _set_offset_internal(self, offset: int) -> None:
        raise CameraError("This camera has no adjustable offset.")

    async def _get_readout_mode_internal(self) -> str | None:
        """Returns the readout mode, if the camera has several."""
        return None

    async def _set_readout_mode_internal(self, mode: str) -> None:
        raise CameraError("This camera has no selectable readout modes.")

    async def get_gain(self) -> float | None:
        """Returns the gain, or `None` if the device has no adjustable gain."""
        gain = await self._get_gain_internal()
        return None if gain is None else float(gain)

    async def set_gain(self: Any, gain: float) -> float:
        """Sets the gain, checked against ``gains`` or ``gain_min``/``gain_max``."""
        gain = _number(gain, "Gain")
        limits = self.limits
        if limits.gains is not None and gain not in limits.gains:
            raise CameraError(f"Gain {gain:g} is not one of {limits.gains}.")
        if (limits.gain_min is not None and gain < limits.gain_min) or (
            limits.gain_max is not None and gain > limits.gain_max
        ):
            raise CameraError(
                f"Gain {gain:g} is outside [{limits.gain_min}, {limits.gain_max}]."
            )
        await self._set_gain_internal(gain)
        return await self.get_gain()

    async def get_offset(self) -> int | None:
        """Returns the offset, or `None` if the camera has none."""
        offset = await self._get_offset_internal()
        return None if offset is None else int(offset)

    async def set_offset(self: Any, offset: int) -> int | None:
        """Sets the offset, checked against ``offset_min``/``offset_max``."""
        low = self.limits.offset_min
        offset = _integer(offset, "Offset", 0 if low is None else low, None)
        if self.limits.offset_max is not None and offset > self.limits.offset_max:
            raise CameraError(f"Offset {offset} is above {self.limits.offset_max}.")
        await self._set_offset_internal(offset)
        return await self.get_offset()

    async def get_readout_mode(self) -> str | None:
        """Returns the readout mode, or `None` if the camera has only one."""
        mode = await self._get_readout_mode_internal()
        return None if mode is None else str(mode)

    async def set_readout_mode(self: Any, mode: str) -> str | None:
        """Selects a readout mode from the camera's ``readout_modes``."""
        modes = self.limits.readout_modes
        if not isinstance(mode, str) or (modes is not None and mode not in modes):
            raise CameraError(f"Readout mode {mode!r} is not one of {modes}.")
        await self._set_readout_mode_internal(mode)
        return await self.get_readout_mode()
