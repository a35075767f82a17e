"""Built-in header and FITS models.

These module-level models are shared templates and must be treated as
read-only: call ``.copy()`` (e.g. ``basic_fits_model.copy()``) and modify the
copy. `.FITSModel.copy` copies the extensions, header models and context, and
shares the cards, which are immutable.
"""

from __future__ import annotations

from camera_core.models.card import Card
from camera_core.models.fits import Extension, FITSModel, HeaderModel

__all__ = ["basic_fits_model", "basic_fz_fits_model", "basic_header_model"]

#: A basic header model with camera and exposure information (read-only).
basic_header_model = HeaderModel(
    [
        "VCAM",
        "BASECAMV",
        "CAMNAME",
        "CAMUID",
        "IMAGETYP",
        "EXPTIME",
        "EXPTIMEN",
        "STACK",
        "STACKFUN",
        Card("TIMESYS", "TAI", "Time reference system"),
        Card(
            "DATE-OBS",
            "{__exposure__.obstime.tai.isot}",
            "Date (in TIMESYS) the exposure started",
        ),
    ]
)

#: A basic FITS model for uncompressed images: one extension with the raw data
#: and `basic_header_model` (read-only; use ``.copy()``).
basic_fits_model = FITSModel(
    [Extension(data="raw", header_model=basic_header_model, name="PRIMARY")]
)

#: Like `basic_fits_model` but with ``RICE_1`` compression (read-only).
basic_fz_fits_model = FITSModel(
    [
        Extension(
            data="raw",
            header_model=basic_header_model,
            name="PRIMARY",
            compressed="RICE_1",
        )
    ]
)
