"""A fake camera and exposure for the FITS model tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from astropy.time import Time


class FakeCamera:
    __version__ = "1.10"

    def __init__(self) -> None:
        self.name = "cam1"
        self.uid = "0042"

    def get_temperature(self) -> np.float32:
        return np.float32(-20.5)

    async def get_status(self) -> dict[str, Any]:
        return {}


def make_exposure(data: np.ndarray | None = None, **kwargs: Any) -> SimpleNamespace:
    rng = np.random.default_rng(42)
    if data is None:
        data = rng.integers(0, 65536, size=(256, 256), dtype=np.uint16)
    attrs: dict[str, Any] = {
        "camera": FakeCamera(),
        "exptime": 1.5,
        "exptime_n": 4.5,
        "image_type": "object",
        "stack": 3,
        "stack_function": np.median,
        "obstime": Time("2024-03-01T12:00:00", format="isot", scale="utc"),
        "data": data,
        "wcs": None,
        "filename": "test.fits",
    }
    attrs.update(kwargs)
    return SimpleNamespace(**attrs)
