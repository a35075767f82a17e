"""Quick-look products of a frame: statistics and a PNG preview (blocking).

Everything here is pure computation or file I/O on an in-memory frame and is
meant to run in an executor (`camera_core.utils.run_in_executor`). The frame
is never copied whole: it is read a block of rows at a time, so temporaries
stay around 8 MB and each numpy call is short. 8- and 16-bit integer frames
(the usual ``uint16``) get exact statistics from their histogram; only the
median of other frames (floating point, 32-bit) needs a copy (a partition).

Saturation
    A pixel is saturated when it is at or above the saturation level: the
    ``saturation`` given (ADU, e.g. a camera's ``saturation`` configuration
    key), else, for integer frames, the largest value of the data type (65535
    for the ``uint16`` frames of 16-bit ADCs). Floating-point frames (stacks)
    have no default level, so their saturated fraction is `None`.

Preview
    The frame is block-averaged by the smallest integer factor that brings its
    longest side to at most ``max_size`` pixels (rows and columns left over
    from the last whole block are dropped, so the aspect ratio is kept to
    within a pixel), stretched linearly between the IRAF zscale limits of that
    image (`~astropy.visualization.ZScaleInterval`, clipped; astropy's
    ``ImageNormalize`` would need matplotlib), and written as an 8-bit
    greyscale PNG by Pillow, atomically. Row 0 of the frame is at the bottom,
    as image viewers of FITS files show it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_stream
from .stars import estimate_stars

__all__ = [
    "FrameStats",
    "Preview",
    "frame_stats",
    "preview_image",
    "preview_path",
    "saturation_level",
    "write_preview",
]

#: Pixels handled per numpy call.
_BLOCK_PIXELS = 1 << 20

#: Suffixes removed from a FITS name to name its preview.
_FITS_SUFFIXES = (".gz", ".fz", ".fits", ".fit", ".fts")


@dataclasses.dataclass(frozen=True)
class FrameStats:
    """Statistics of a frame; `None` where they could not be computed.

    Attributes
    ----------
    median, mean, std, min, max
        Over the finite pixels, as `numpy.median` etc. compute them.
    saturated_fraction
        Fraction of the pixels at or above ``saturation``.
    saturation
        The saturation level used (see the module's documentation).
    stars
        Number of stars found (light frames only).
    fwhm_px
        Median FWHM of the stars, in pixels.
    """

    median: float | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    saturated_fraction: float | None
    saturation: float | None
    stars: int | None = None
    fwhm_px: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The statistics as a dictionary."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Preview:
    """A written preview: its path and size in pixels."""

    path: Path
    width: int
    height: int


def _blocks(data: np.ndarray) -> Iterator[np.ndarray]:
    """Views of consecutive blocks of rows of ``data`` (about 1 Mpixel each)."""
    rows = max(1, _BLOCK_PIXELS // max(int(np.prod(data.shape[1:])), 1))
    for start in range(0, data.shape[0], rows):
        yield data[start : start + rows]


def saturation_level(data: np.ndarray, saturation: float | None = None) -> float | None:
    """The saturation level of ``data`` (see the module's documentation)."""
    if saturation is not None:
        return float(saturation)
    if np.issubdtype(data.dtype, np.integer):
        return float(np.iinfo(data.dtype).max)
    return None


def _histogram_stats(data: np.ndarray, level: float | None) -> FrameStats:
    """Exact statistics of 8- and 16-bit integer frames from their histogram."""
    info = np.iinfo(data.dtype)
    offset = int(info.min)
    counts = np.zeros(int(info.max) - offset + 1, dtype=np.int64)
    for block in _blocks(data):
        values = block.ravel()
        if offset:
            values = values.astype(np.int32) - offset
        counts += np.bincount(values, minlength=counts.size)
    n = int(counts.sum())
    present = np.flatnonzero(counts)
    values = np.arange(counts.size, dtype=np.int64) + offset
    total = int(np.dot(counts, values))  # exact: int64
    mean = total / n
    var = float(np.dot(counts, (values - mean) ** 2)) / n
    cumulative = np.cumsum(counts)
    low = values[np.searchsorted(cumulative, (n - 1) // 2 + 1)]
    high = values[np.searchsorted(cumulative, n // 2 + 1)]
    saturated = None
    if level is not None:
        first = max(0, math.ceil(level) - offset)
        saturated = int(counts[first:].sum()) / n
    return FrameStats(
        median=(float(low) + float(high)) / 2.0,
        mean=mean,
        std=math.sqrt(var),
        min=float(values[present[0]]),
        max=float(values[present[-1]]),
        saturated_fraction=saturated,
        saturation=level,
    )


def _general_stats(data: np.ndarray, level: float | None) -> FrameStats:
    """Statistics of any real frame in two passes over blocks of rows."""
    floating = np.issubdtype(data.dtype, np.floating)
    n = 0
    total = 0.0
    low, high = math.inf, -math.inf
    saturated = 0
    all_finite = True
    for block in _blocks(data):
        if floating:
            finite = np.isfinite(block)
            if not finite.all():
                all_finite = False
                block = block[finite]
        if block.size == 0:
            continue
        n += block.size
        total += float(block.sum(dtype=np.float64))
        low = min(low, float(block.min()))
        high = max(high, float(block.max()))
        if level is not None:
            saturated += int(np.count_nonzero(block >= level))
    if n == 0:
        return FrameStats(None, None, None, None, None, None, level)
    mean = total / n
    squares = 0.0
    for block in _blocks(data):
        if not all_finite:
            block = block[np.isfinite(block)]
        deviation = block.astype(np.float64) - mean
        squares += float(np.dot(deviation.ravel(), deviation.ravel()))
    values = data if all_finite else data[np.isfinite(data)]
    return FrameStats(
        median=float(np.median(values)),
        mean=mean,
        std=math.sqrt(squares / n),
        min=low,
        max=high,
        saturated_fraction=None if level is None else saturated / n,
        saturation=level,
    )


def frame_stats(
    data: np.ndarray,
    saturation: float | None = None,
    stars: bool = False,
) -> FrameStats:
    """Median, mean, std, extrema, saturated fraction and stars of a frame.

    Blocking: run it in an executor. ``data`` is not modified nor copied
    whole (see the module's documentation).

    Parameters
    ----------
    data
        The frame, a 2-D array of integers or floats.
    saturation
        The saturation level in ADU; `None` for the default of the data type.
    stars
        Whether to count the stars and estimate their FWHM
        (`camera_core.stars.estimate_stars`), for light frames.

    Returns
    -------
    stats
        The statistics; ``stars`` and ``fwhm_px`` are `None` unless asked for.
    """
    data = np.asarray(data)
    if data.size == 0:
        raise ValueError("The frame is empty.")
    if data.dtype.kind not in "uif":
        raise ValueError(f"Cannot compute statistics of {data.dtype} data.")
    level = saturation_level(data, saturation)
    if data.dtype.kind in "ui" and data.dtype.itemsize <= 2:
        result = _histogram_stats(data, level)
    else:
        result = _general_stats(data, level)
    if stars:
        estimate = estimate_stars(data, saturation=level)
        result = dataclasses.replace(
            result, stars=estimate.count, fwhm_px=estimate.fwhm
        )
    return result


def _downsample(data: np.ndarray, max_size: int) -> np.ndarray:
    """Block average by the smallest factor that fits ``max_size`` (float32)."""
    ny, nx = data.shape
    factor = max(1, math.ceil(max(ny, nx) / max_size))
    # A side shorter than the factor (a strip) is averaged as a whole.
    fy, fx = min(factor, ny), min(factor, nx)
    oy, ox = ny // fy, nx // fx
    out = np.empty((oy, ox), dtype=np.float32)
    rows = max(1, _BLOCK_PIXELS // max(nx * fy, 1))
    for start in range(0, oy, rows):
        stop = min(oy, start + rows)
        block = data[start * fy : stop * fy, : ox * fx]
        block = block.reshape(stop - start, fy, ox, fx)
        out[start:stop] = block.mean(axis=(1, 3), dtype=np.float64)
    return out


def preview_image(data: np.ndarray, max_size: int = 1024) -> np.ndarray:
    """The 8-bit greyscale preview of a frame, row 0 at the bottom (blocking).

    Parameters
    ----------
    data
        The 2-D frame.
    max_size
        Largest side of the preview in pixels.

    Returns
    -------
    image
        A ``uint8`` array, first row at the top (as image files store it).
    """
    from astropy.visualization import ZScaleInterval

    data = np.asarray(data)
    if data.ndim != 2 or data.size == 0:
        raise ValueError(f"Cannot preview an array of shape {data.shape}.")
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, not {max_size}.")
    small = _downsample(data, max_size)
    finite = np.isfinite(small)
    if not finite.all():
        small[~finite] = float(np.median(small[finite])) if finite.any() else 0.0
    # In place: (small - zmin) / (zmax - zmin) clipped to [0, 1]; a constant
    # image becomes 0.
    scaled = ZScaleInterval()(small, clip=True, out=small)
    image = (scaled * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    return np.ascontiguousarray(image[::-1])


def preview_path(
    fits_path: str | os.PathLike,
    directory: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> Path:
    """Where the preview of a FITS file goes.

    The preview is named after the file, with its FITS suffixes (``.fits``,
    ``.fit``, ``.fts``, ``.fz``, ``.gz``) replaced by ``.png``: next to it, or
    in ``directory``. There it keeps the file's path relative to ``root``
    (e.g. the data directory) when the file is inside ``root``.
    """
    fits_path = Path(fits_path)
    name = fits_path.name
    while True:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in _FITS_SUFFIXES or not stem:
            break
        name = stem
    name = f"{name}.png"
    if directory is None:
        return fits_path.with_name(name)
    relative = Path()
    if root is not None:
        try:
            relative = fits_path.parent.relative_to(root)
        except ValueError:
            relative = Path()
    return Path(directory) / relative / name


def write_preview(
    data: np.ndarray, path: str | os.PathLike, max_size: int = 1024
) -> Preview:
    """Writes the PNG preview of a frame, atomically (blocking).

    Parameters
    ----------
    data
        The 2-D frame.
    path
        The PNG file; missing directories are created, an existing file is
        replaced.
    max_size
        Largest side of the preview in pixels.

    Raises
    ------
    OSError
        If the file cannot be written; no partial file is left behind.
    """
    from PIL import Image

    image = Image.fromarray(preview_image(data, max_size))
    path = Path(path)
    # Level 1: sky noise does not compress anyway, and it is the fastest.
    atomic_stream(
        path, True, lambda raw: image.save(raw, format="PNG", compress_level=1)
    )
    return Preview(path, image.width, image.height)
