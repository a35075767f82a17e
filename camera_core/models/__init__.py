"""Header cards and FITS models (mirrors ``basecam.models``)."""

from __future__ import annotations

from camera_core.models.builtin import (
    basic_fits_model,
    basic_fz_fits_model,
    basic_header_model,
)
from camera_core.models.card import (
    DEFAULT_CARDS,
    Card,
    CardGroup,
    DefaultCard,
    EvaluatedCard,
    MacroCard,
    WCSCards,
)
from camera_core.models.fits import COMPRESSION_TYPES, Extension, FITSModel, HeaderModel

__all__ = [
    "COMPRESSION_TYPES",
    "DEFAULT_CARDS",
    "Card",
    "CardGroup",
    "DefaultCard",
    "EvaluatedCard",
    "Extension",
    "FITSModel",
    "HeaderModel",
    "MacroCard",
    "WCSCards",
    "basic_fits_model",
    "basic_fz_fits_model",
    "basic_header_model",
]
