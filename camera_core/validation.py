"""Validation of the numbers commands and drivers pass to the mix-ins."""

from __future__ import annotations

import math
from typing import Any

from .exceptions import CameraError

__all__ = ["integer", "number"]


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CameraError(f"{what} must be a number, not {value!r}.")
    if not math.isfinite(value):
        raise CameraError(f"{what} must be finite, not {value!r}.")
    return float(value)


def integer(value: Any, what: str, minimum: int, maximum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CameraError(f"{what} must be an integer, not {value!r}.")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and {maximum}"
        raise CameraError(f"{what} must be between {minimum}{upper}, not {value}.")
    return value
