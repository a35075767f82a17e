"""Camera limits and the capability summary derived from a camera's mixins."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["CameraLimits"]


@dataclasses.dataclass
class CameraLimits:
    """What a camera can do, where the driver or the configuration knows it.

    Every field is optional: `None` means unknown, and the policy layer then does
    not validate against it. The fields can be set from the ``limits`` section of
    a camera's configuration or by the driver in ``_connect_internal``.

    Parameters
    ----------
    width, height
        Full-frame size of the sensor, in unbinned pixels.
    max_binning
        Largest horizontal and vertical binning factors.
    exptime_min, exptime_max
        Range of accepted exposure times, in seconds. Bias frames always use 0.
    gain_min, gain_max
        Range of accepted gain values, for cameras with a numeric gain.
    gains
        Accepted gain values, for cameras with a discrete list of gains.
    offset_min, offset_max
        Range of accepted offset (pedestal) values.
    readout_modes
        Names of the available readout modes.
    temperature_min, temperature_max
        Range of accepted cooler set points, in degrees Celsius.
    pixel_size
        Physical pixel size in micrometres (x, y), for the FITS header.
    """

    width: int | None = None
    height: int | None = None
    max_binning: tuple[int, int] | None = None
    exptime_min: float | None = None
    exptime_max: float | None = None
    gain_min: float | None = None
    gain_max: float | None = None
    gains: list[float] | None = None
    offset_min: int | None = None
    offset_max: int | None = None
    readout_modes: list[str] | None = None
    temperature_min: float | None = None
    temperature_max: float | None = None
    pixel_size: tuple[float, float] | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> CameraLimits:
        """Builds the limits from a ``limits`` configuration mapping.

        Raises
        ------
        ValueError
            If the mapping has a key that is not a field of `CameraLimits`.
        """
        if config is None:
            return cls()
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(
                f"Unknown camera limit(s) {unknown}; valid keys are {sorted(names)}."
            )
        values = dict(config)
        for key in ("max_binning", "pixel_size"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def update(self, **values: Any) -> None:
        """Sets several limits at once (used by drivers after connecting)."""
        for key, value in values.items():
            if not hasattr(self, key):
                raise AttributeError(f"CameraLimits has no field {key!r}.")
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        """Returns the known limits as JSON-compatible values, omitting unknowns."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out
