"""Conversion of evaluated card values to values that FITS headers can store."""

from __future__ import annotations

import re
from typing import Any

import numpy
from astropy.io import fits

__all__ = ["autocast", "to_fits_value"]

_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FITS_TYPES = (str, bool, int, float, complex, type(None), fits.card.Undefined)


def to_fits_value(value: Any) -> Any:
    """Converts a value into something astropy can store in a header card.

    Numpy scalars become Python scalars; values astropy cannot store are
    converted with `str`.
    """
    if isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, _FITS_TYPES):
        return value
    return str(value)


def autocast(value: Any) -> Any:
    """Converts a short string that looks like an int, float or bool to that type.

    Other values, and strings longer than 64 characters, are returned unchanged.
    """
    if not isinstance(value, str) or len(value) > 64:
        return value
    text = value.strip()
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    if text in ("True", "False"):
        return text == "True"
    return value
