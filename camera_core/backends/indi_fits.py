"""FITS helpers of the INDI backend: BLOB decoding and device header cards."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from astropy.io import fits

from ..exceptions import ExposureError
from ..models.card import Card

__all__ = ["HEADER_CARDS", "decode_blob", "device_cards"]

#: The device cards added to an INDI camera's header: (name, key, comment).
#: ``key`` is looked up in the camera's cached ``header_values``.
HEADER_CARDS: tuple[tuple[str, str, str], ...] = (
    ("INSTRUME", "device", "INDI device name"),
    ("INDIDRV", "driver", "INDI driver and version"),
    ("INDISERV", "server", "INDI server host:port"),
    ("DETSIZE", "detsize", "Sensor size [unbinned pixels]"),
    ("PIXSIZE1", "pixel_size_x", "Pixel width [micron]"),
    ("PIXSIZE2", "pixel_size_y", "Pixel height [micron]"),
    ("XBINNING", "hbin", "Horizontal binning"),
    ("YBINNING", "vbin", "Vertical binning"),
    ("XORGSUBF", "x_origin", "Subframe origin, x [unbinned pixels, 0-based]"),
    ("YORGSUBF", "y_origin", "Subframe origin, y [unbinned pixels, 0-based]"),
    ("GAIN", "gain", "Gain set on the device"),
    ("OFFSET", "offset", "Offset set on the device"),
    ("CCD-TEMP", "ccd_temp", "CCD temperature at readout [C]"),
    ("SET-TEMP", "set_point", "Cooler set point [C]"),
)


def device_cards(getter: Callable[[str], Any]) -> list[Card]:
    """The header cards of `HEADER_CARDS`, valued by ``getter(key)``.

    ``getter`` must be synchronous and cheap: the header is evaluated on the
    event loop when the frame is written.
    """
    return [
        Card(name, getter, comment, fargs=(key,)) for name, key, comment in HEADER_CARDS
    ]


def decode_blob(blob: bytes, blob_format: str) -> tuple[np.ndarray, fits.Header]:
    """Decodes a CCD BLOB into a native-endian image and its FITS header.

    Blocking: call it in an executor. ``.fits`` BLOBs are read with astropy
    (16-bit data with ``BZERO = 32768`` become ``uint16``); ``.z`` (zlib) is
    decompressed first and ``.fz`` tile-compressed images are supported.

    Raises
    ------
    ExposureError
        If the BLOB is not a FITS image.
    """
    fmt = (blob_format or "").lower()
    if fmt.endswith(".z"):
        blob = zlib.decompress(blob)
        fmt = fmt[:-2]
    if not fmt.startswith(".fits"):
        raise ExposureError(
            f"The device sent a {blob_format!r} image; set CCD_TRANSFER_FORMAT to "
            "FITS (FORMAT_FITS)."
        )
    try:
        with fits.open(io.BytesIO(blob), memmap=False) as hdul:
            for hdu in hdul:
                if hdu.data is not None and hdu.data.ndim == 2:
                    data = np.asarray(hdu.data)
                    header = hdu.header.copy()
                    break
            else:
                raise ExposureError("The FITS image from the device has no 2-D data.")
    except (OSError, ValueError, TypeError) as err:
        raise ExposureError(
            f"Cannot read the FITS image from the device: {err}"
        ) from err
    native = data.dtype.newbyteorder("=")
    return np.ascontiguousarray(data, dtype=native), header
