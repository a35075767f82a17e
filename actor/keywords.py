"""Builders of the per-camera keywords shared by several commands."""

from __future__ import annotations

from typing import Any

from camera_core import BaseCamera

from .tools import to_json

__all__ = [
    "area_keyword",
    "binning_keyword",
    "gain_keyword",
    "shutter_keyword",
    "temperature_keyword",
]


async def temperature_keyword(camera: Any) -> dict[str, Any]:
    """The ``temperature`` keyword of a camera with a cooler."""
    return to_json({"camera": camera.name, **await camera.cooler_status()})


async def binning_keyword(camera: Any) -> dict[str, Any]:
    """The ``binning`` keyword of a camera with an image area."""
    hbin, vbin = await camera.get_binning()
    return {"camera": camera.name, "horizontal": hbin, "vertical": vbin}


async def area_keyword(camera: Any) -> dict[str, Any]:
    """The ``area`` keyword (1-based, inclusive, unbinned)."""
    x0, x1, y0, y1 = await camera.get_image_area()
    return {"camera": camera.name, "x0": x0, "x1": x1, "y0": y0, "y1": y1}


def shutter_keyword(camera: BaseCamera, is_open: bool) -> dict[str, Any]:
    """The ``shutter`` keyword for a position read from the camera."""
    return {"camera": camera.name, "shutter": "open" if is_open else "closed"}


async def gain_keyword(camera: Any) -> dict[str, Any]:
    """The ``gain`` keyword: gain, offset and readout mode."""
    return to_json(
        {
            "camera": camera.name,
            "gain": await camera.get_gain(),
            "offset": await camera.get_offset(),
            "readout_mode": await camera.get_readout_mode(),
        }
    )
