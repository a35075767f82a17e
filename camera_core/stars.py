"""A rough star count and FWHM of a light frame (pure numpy, blocking).

The estimate is meant for a quick look, not for photometry:

1. The background and its noise are the median and the MAD-based sigma
   (1.4826 × median absolute deviation) of a regular subsample of the frame.
2. Candidates are the pixels more than ``threshold`` sigma above the
   background that are the maximum of the box of ``2 * peak_radius + 1``
   pixels around them (frame edges excluded). Peaks closer than
   ``min_separation`` pixels to a brighter one belong to the same star.
3. Sharp peaks are cosmic rays or hot pixels, not stars: the mean of the four
   neighbours of a star's peak, above the background, is at least
   ``min_sharpness`` of the peak (about 0.8 for a 3.5 px FWHM, below 0.1 for
   a one-pixel hit).
4. The FWHM is measured on the brightest unsaturated stars whose box lies in
   the frame, by adaptive Gaussian-weighted second moments (the weight's width
   is iterated to the star's own): for a Gaussian star this converges to its
   sigma whatever the noise far from the star, and FWHM = 2.3548 sigma. The
   frame's FWHM is the median over those stars.

The frame is scanned a block of rows at a time, so temporaries stay small and
each numpy call is short (an executor thread does not keep the event loop
waiting for the GIL).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["StarEstimate", "estimate_stars"]

#: FWHM / sigma of a Gaussian.
SIGMA_TO_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: Pixels handled per numpy call when scanning the frame.
_BLOCK_PIXELS = 1 << 20

#: Pixels of the subsample that gives the background and its noise.
_SAMPLE_PIXELS = 1 << 18


@dataclasses.dataclass(frozen=True)
class StarEstimate:
    """The stars found in a frame.

    Attributes
    ----------
    count
        Number of stars found.
    fwhm
        Median FWHM in pixels of the stars measured, or `None` if none could
        be measured.
    measured
        Number of stars whose FWHM was measured.
    background, noise
        Background level and its sigma, in the units of the frame.
    """

    count: int
    fwhm: float | None
    measured: int
    background: float
    noise: float


def background(data: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based sigma of a regular subsample of ``data``."""
    step = max(1, math.isqrt(data.size // _SAMPLE_PIXELS))
    sample = np.asarray(data[::step, ::step], dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return math.nan, math.nan
    level = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - level)))
    if noise == 0.0:
        noise = float(np.std(sample))
    return level, noise


def _peaks(
    data: np.ndarray, cut: float, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the local maxima above ``cut``."""
    ny, nx = data.shape
    rows_per = max(1, _BLOCK_PIXELS // max(nx, 1))
    ys, xs, values = [], [], []
    for start in range(radius, ny - radius, rows_per):
        stop = min(start + rows_per, ny - radius)
        block = data[start - radius : stop + radius]
        # Candidates: inside the block's own rows, away from the side edges.
        cy, cx = np.nonzero(block[radius : radius + stop - start] > cut)
        keep = (cx >= radius) & (cx < nx - radius)
        cy, cx = cy[keep] + radius, cx[keep]
        if cy.size == 0:
            continue
        value = block[cy, cx]
        is_max = np.ones(cy.size, dtype=bool)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if dy == 0 and dx == 0:
                    continue
                other = block[cy + dy, cx + dx]
                # Ties (plateaus): only the first pixel in raster order wins.
                earlier = dy < 0 or (dy == 0 and dx < 0)
                is_max &= (value > other) if earlier else (value >= other)
        ys.append(cy[is_max] + start - radius)
        xs.append(cx[is_max])
        values.append(value[is_max].astype(np.float64))
    if not ys:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, np.empty(0)
    return np.concatenate(ys), np.concatenate(xs), np.concatenate(values)


def _merge(
    ys: np.ndarray, xs: np.ndarray, values: np.ndarray, separation: float
) -> np.ndarray:
    """Indices of the peaks with no brighter peak within ``separation``.

    Brightest first. Vectorised over a grid of ``separation``-sized cells
    (no Python object per peak, so no garbage collection pauses).
    """
    n = ys.size
    order = np.argsort(-values, kind="stable")
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)
    cell = max(float(separation), 1.0)
    gy = (ys // cell).astype(np.int64) + 1
    gx = (xs // cell).astype(np.int64) + 1
    width = int(gx.max(initial=0)) + 2
    keys = gy * width + gx
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    suppressed = np.zeros(n, dtype=bool)
    limit = float(separation) ** 2
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            target = (gy + dy) * width + (gx + dx)
            low = np.searchsorted(sorted_keys, target, "left")
            counts = np.searchsorted(sorted_keys, target, "right") - low
            first = np.cumsum(counts) - counts
            i = np.repeat(np.arange(n), counts)
            j = by_key[
                np.repeat(low, counts) + np.arange(i.size) - np.repeat(first, counts)
            ]
            distance = (ys[i] - ys[j]) ** 2 + (xs[i] - xs[j]) ** 2
            suppressed[i[(distance < limit) & (rank[j] < rank[i])]] = True
    kept = np.flatnonzero(~suppressed)
    return kept[np.argsort(rank[kept])]


def _sharpness(
    data: np.ndarray, ys: np.ndarray, xs: np.ndarray, peaks: np.ndarray, level: float
) -> np.ndarray:
    """Mean of the four neighbours above background over the peak's height."""
    around = (
        data[ys - 1, xs].astype(np.float64)
        + data[ys + 1, xs]
        + data[ys, xs - 1]
        + data[ys, xs + 1]
    ) / 4.0
    return (around - level) / (peaks - level)


def adaptive_fwhm(cutouts: np.ndarray, iterations: int = 30) -> np.ndarray:
    """FWHM of background-subtracted star cutouts from adaptive moments.

    Parameters
    ----------
    cutouts
        Array of shape ``(n, size, size)``, each star near the centre.
    iterations
        Largest number of iterations of the weight's width.

    Returns
    -------
    fwhm
        The FWHM of each star in pixels; NaN where the moments diverge.
    """
    n, size, _ = cutouts.shape
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    yy, xx = grid[:, None], grid[None, :]
    sigma = np.full(n, 1.5)
    cy = np.zeros(n)
    cx = np.zeros(n)
    valid = np.ones(n, dtype=bool)
    for _ in range(iterations):
        dy = yy[None] - cy[:, None, None]
        dx = xx[None] - cx[:, None, None]
        r2 = dy * dy + dx * dx
        weighted = cutouts * np.exp(-r2 / (2.0 * sigma[:, None, None] ** 2))
        total = weighted.sum(axis=(1, 2))
        valid &= total > 0
        total = np.where(valid, total, 1.0)
        cy = cy + (weighted * dy).sum(axis=(1, 2)) / total
        cx = cx + (weighted * dx).sum(axis=(1, 2)) / total
        # Per-axis second moment of star × weight; for a Gaussian star of
        # sigma s and a weight of sigma w it is s²w²/(s² + w²).
        moment = (weighted * r2).sum(axis=(1, 2)) / total / 2.0
        valid &= (moment > 0) & (moment < sigma**2)
        inverse = np.where(valid, 1.0 / np.where(valid, moment, 1.0), 2.0)
        new = np.sqrt(1.0 / np.maximum(inverse - 1.0 / sigma**2, 1e-12))
        new = np.clip(new, 0.1, size / 2.0)
        done = np.all(np.abs(new - sigma) < 1e-4 * sigma)
        sigma = np.where(valid, new, sigma)
        cy = np.clip(cy, -size / 4.0, size / 4.0)
        cx = np.clip(cx, -size / 4.0, size / 4.0)
        if done:
            break
    valid &= sigma < size / 2.0
    return np.where(valid, sigma * SIGMA_TO_FWHM, np.nan)


def estimate_stars(
    data: np.ndarray,
    saturation: float | None = None,
    threshold: float = 5.0,
    peak_radius: int = 2,
    min_separation: float = 5.0,
    min_sharpness: float = 0.25,
    box: int = 17,
    max_measured: int = 200,
) -> StarEstimate:
    """Counts the stars of a light frame and estimates their FWHM (blocking).

    Parameters
    ----------
    data
        The 2-D frame. It is not copied (only blocks of rows are converted).
    saturation
        Pixels at or above this level are saturated: those stars are counted
        but their FWHM is not measured. `None`: no level.
    threshold
        Detection threshold in sigma above the background.
    peak_radius
        A peak is the maximum of the ``2 * peak_radius + 1`` box around it.
    min_separation
        Peaks closer than this (pixels) to a brighter peak are merged into it.
    min_sharpness
        Peaks whose four neighbours are, on average, below this fraction of
        the peak's height (above background) are not stars.
    box
        Side in pixels of the box in which the FWHM is measured.
    max_measured
        The FWHM is the median over at most this many of the brightest
        unsaturated stars.

    Returns
    -------
    estimate
        The count, the FWHM and the background; count 0 and FWHM `None` for a
        flat or empty frame.
    """
    if data.ndim != 2:
        raise ValueError(f"Expected a 2-D frame, not {data.ndim}-D.")
    level, noise = background(data)
    ny, nx = data.shape
    margin = max(peak_radius, 1)
    if not (math.isfinite(level) and noise > 0) or min(ny, nx) <= 2 * margin:
        return StarEstimate(0, None, 0, level, noise)
    ys, xs, peaks = _peaks(data, level + threshold * noise, margin)
    kept = _merge(ys, xs, peaks, min_separation)
    ys, xs, peaks = ys[kept], xs[kept], peaks[kept]
    stars = _sharpness(data, ys, xs, peaks, level) >= min_sharpness
    ys, xs, peaks = ys[stars], xs[stars], peaks[stars]

    half = box // 2
    usable = (ys >= half) & (ys < ny - half) & (xs >= half) & (xs < nx - half)
    if saturation is not None:
        usable &= peaks < saturation
    chosen = np.flatnonzero(usable)[:max_measured]  # brightest first
    fwhm: float | None = None
    measured = 0
    if chosen.size:
        offsets = np.arange(-half, half + 1)
        rows = ys[chosen, None, None] + offsets[None, :, None]
        cols = xs[chosen, None, None] + offsets[None, None, :]
        cutouts = data[rows, cols].astype(np.float64)
        edge = np.concatenate(
            [cutouts[:, 0], cutouts[:, -1], cutouts[:, 1:-1, 0], cutouts[:, 1:-1, -1]],
            axis=1,
        )
        cutouts -= np.median(edge, axis=1)[:, None, None]  # local background
        values = adaptive_fwhm(cutouts)
        values = values[np.isfinite(values)]
        measured = int(values.size)
        if measured:
            fwhm = float(np.median(values))
    return StarEstimate(int(ys.size), fwhm, measured, level, noise)
