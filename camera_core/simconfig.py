"""The parameters of a simulated camera: defaults and how sections merge.

A simulated camera takes the defaults of `SIMULATOR_DEFAULTS`, overridden by
the ``simulator`` section at the top of the configuration, overridden by the
``simulator`` section of its own camera entry. ``faults`` merge by fault name.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from .simfaults import validate_fault

__all__ = ["SIMULATOR_DEFAULTS", "SYNTH_KEYS", "check_params", "merged_params"]

#: Default simulator parameters (``time_factor: None`` keeps the camera's own).
SIMULATOR_DEFAULTS: Mapping[str, Any] = types.MappingProxyType({
    "width": 1024, "height": 1024, "seed": None, "time_factor": None,
    "readout_time": 1.0, "flush_time": 0.1, "fast_noise": False,
    "ambient": 20.0, "cooling_rate": 1.0, "min_temp": -40.0, "max_temp": 30.0,
    "gains": (1.0, 1.5, 3.0), "gain": 1.5, "readout_modes": ("normal", "fast"),
    "offset_min": 0, "offset_max": 10_000, "offset": 1000,
    "max_binning": (4, 4), "pixel_size": (15.0, 15.0), "read_noise": 5.0,
    "dark_current": 0.1, "n_stars": None, "sky": 20.0, "cosmic_rate": 5e-8,
    "full_well": 100_000.0, "flat_rate": 20_000.0, "faults": None,
})  # fmt: skip

#: Simulator parameters passed on to `FrameSynthesizer` as they are.
SYNTH_KEYS = ("read_noise", "dark_current", "n_stars", "sky", "cosmic_rate",
               "full_well", "flat_rate")  # fmt: skip


def merged_params(
    camera_params: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults < top-level ``simulator`` < the camera's ``simulator`` section."""
    top = dict(config.get("simulator") or {})
    own = dict(camera_params.get("simulator") or {})
    unknown = sorted((set(top) | set(own)) - set(SIMULATOR_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown simulator parameter(s) {unknown}; valid keys are "
            f"{sorted(SIMULATOR_DEFAULTS)}."
        )
    params = {**SIMULATOR_DEFAULTS, **top, **own}
    faults: dict[str, Any] = {}
    for section in (top, own):
        found = section.get("faults") or {}
        if not isinstance(found, Mapping):
            raise ValueError(f"faults must be a mapping of fault names, not {found!r}.")
        for name, values in found.items():
            if values is not None and not isinstance(values, Mapping):
                raise ValueError(
                    f"fault {name!r}: its parameters must be a mapping, not {values!r}."
                )
            faults[name] = dict(values or {})
    params["faults"] = faults
    if own.get("time_factor") is None and "time_factor" in camera_params:
        params["time_factor"] = camera_params["time_factor"]
    return params


def check_params(cameras: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Checks the merged parameters and faults of every simulated camera.

    Parameters
    ----------
    cameras
        The ``cameras`` entries; those without ``uid`` or with
        ``simulator: false`` are not simulated and are skipped.
    config
        The whole configuration (for its top-level ``simulator`` section).

    Raises
    ------
    ValueError
        Naming the camera and the problem.
    """
    for name, entry in cameras.items():
        entry = entry or {}
        if entry.get("uid") is None or entry.get("simulator", True) is False:
            continue
        try:
            params = merged_params(entry, config)
            for fault, values in params["faults"].items():
                validate_fault(fault, values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"Camera {name!r}: simulator: {err}") from None
