"""Quick-look statistics, star estimate and PNG preview (camera_core.quicklook).

The actor side (keywords over RabbitMQ) is in tests/test_actor_quicklook.py.
"""

from __future__ import annotations

import asyncio
import math
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from camera_core.quicklook import (
    frame_stats,
    preview_image,
    preview_path,
    saturation_level,
    write_preview,
)
from camera_core.stars import SIGMA_TO_FWHM, estimate_stars
from camera_core.utils import run_in_executor


def numpy_stats(data: np.ndarray, level: float | None) -> dict:
    """What numpy says, over the finite pixels."""
    values = data[np.isfinite(data)] if data.dtype.kind == "f" else data.ravel()
    values = values.astype(np.float64)
    return {
        "median": np.median(values),
        "mean": np.mean(values),
        "std": np.std(values),
        "min": values.min(),
        "max": values.max(),
        "saturated_fraction": (
            None if level is None else np.count_nonzero(values >= level) / values.size
        ),
    }


def assert_matches_numpy(stats, data: np.ndarray, level: float | None) -> None:
    expected = numpy_stats(data, level)
    for key in ("median", "mean", "std", "min", "max"):
        assert getattr(stats, key) == pytest.approx(expected[key], rel=1e-9), key
    assert stats.saturated_fraction == expected["saturated_fraction"]  # exact
    assert stats.saturation == level


@pytest.mark.parametrize(
    "dtype, low, high",
    [
        (np.uint16, 0, 65535),
        (np.int16, -32768, 32767),
        (np.uint8, 0, 255),
        (np.int32, -100_000, 100_000),
    ],
)
@pytest.mark.parametrize("shape", [(333, 517), (1, 7), (2048, 1024)])
def test_integer_stats_match_numpy(dtype, low, high, shape):
    rng = np.random.default_rng(7)
    data = rng.integers(low, high, shape, endpoint=True).astype(dtype)
    data.flat[::97] = np.iinfo(dtype).max  # some saturated pixels
    stats = frame_stats(data)
    level = float(np.iinfo(dtype).max)
    assert_matches_numpy(stats, data, level)
    assert stats.saturated_fraction > 0
    assert stats.stars is None and stats.fwhm_px is None


def test_even_count_median_averages_the_middle_values():
    data = np.array([[1, 2], [10, 1000]], dtype=np.uint16)
    assert frame_stats(data).median == 6.0
    assert frame_stats(data.astype(np.float32)).median == 6.0


def test_float_stats_ignore_non_finite_pixels():
    rng = np.random.default_rng(3)
    data = rng.normal(1000.0, 30.0, (700, 900)).astype(np.float32)
    data[5, :10] = np.nan
    data[600, 3] = np.inf
    stats = frame_stats(data)
    assert_matches_numpy(stats, data, None)  # no default level for floats
    assert stats.saturated_fraction is None
    stats = frame_stats(data, saturation=1050.0)
    assert_matches_numpy(stats, data, 1050.0)
    assert 0 < stats.saturated_fraction < 0.5


def test_saturation_level_rule():
    assert saturation_level(np.zeros(2, np.uint16)) == 65535.0
    assert saturation_level(np.zeros(2, np.int16)) == 32767.0
    assert saturation_level(np.zeros(2, np.float32)) is None
    assert saturation_level(np.zeros(2, np.uint16), 60000) == 60000.0
    # A configured level counts every pixel at or above it.
    data = np.array([[59999, 60000, 65535, 0]], dtype=np.uint16)
    assert frame_stats(data, saturation=60000).saturated_fraction == 0.5


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match="empty"):
        frame_stats(np.zeros((0, 5), np.uint16))
    with pytest.raises(ValueError, match="Cannot compute"):
        frame_stats(np.zeros((3, 3), np.complex64))
    with pytest.raises(ValueError, match="could not convert"):
        frame_stats(np.zeros((3, 3), np.uint16), saturation="lots")


def star_field(
    n: int,
    fwhm: float,
    shape: tuple[int, int] = (600, 800),
    seed: int = 0,
    saturated: int = 0,
    cosmics: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 frame with ``n`` Gaussian stars of ``fwhm`` on a noisy sky.

    Stars sit on a jittered grid (at least 40 px apart, 20 px from the
    edges), with peaks from 15 to 1500 sigma above the sky; the first
    ``saturated`` ones are clipped at 65535. ``cosmics`` one- and two-pixel
    hits are added away from the stars.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    sky, noise = 1000.0, 10.0
    image = sky + noise * rng.standard_normal(shape)
    cells = [(y, x) for y in range(40, ny - 39, 60) for x in range(40, nx - 39, 60)]
    assert len(cells) >= n + cosmics, "field too small"
    order = rng.permutation(len(cells))
    sigma = fwhm / SIGMA_TO_FWHM
    half = math.ceil(5 * sigma)
    positions = []
    for k, cell in enumerate(order[:n]):
        cy, cx = cells[cell]
        y, x = cy + rng.uniform(-10, 10), cx + rng.uniform(-10, 10)
        peak = 300_000.0 if k < saturated else noise * 10 ** rng.uniform(1.2, 3.2)
        ys = np.arange(int(y) - half, int(y) + half + 1)
        xs = np.arange(int(x) - half, int(x) + half + 1)
        gy = np.exp(-0.5 * ((ys - y) / sigma) ** 2)
        gx = np.exp(-0.5 * ((xs - x) / sigma) ** 2)
        image[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] += peak * np.outer(gy, gx)
        positions.append((y, x))
    for cell in order[n : n + cosmics]:
        cy, cx = cells[cell]
        image[cy, cx] += rng.uniform(2_000.0, 20_000.0)
        image[cy, cx + 1] += rng.uniform(0.0, 1_000.0)
    image = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
    return image, np.array(positions)


@pytest.mark.parametrize("fwhm", [2.5, 4.0, 6.0])
def test_known_stars_are_counted_and_measured(fwhm):
    image, _ = star_field(40, fwhm, saturated=3, cosmics=15, seed=int(fwhm * 10))
    estimate = estimate_stars(image, saturation=65535)
    assert estimate.count == 40  # saturated stars count, cosmic rays do not
    assert estimate.measured == 37  # saturated stars are not measured
    assert estimate.fwhm == pytest.approx(fwhm, rel=0.2)
    assert estimate.background == pytest.approx(1000.0, abs=2)
    assert estimate.noise == pytest.approx(10.0, rel=0.1)
    stats = frame_stats(image, stars=True)
    assert (stats.stars, stats.fwhm_px) == (estimate.count, estimate.fwhm)


def test_frames_without_stars():
    rng = np.random.default_rng(11)
    noise = (1000 + 10 * rng.standard_normal((1000, 1000))).astype(np.uint16)
    assert estimate_stars(noise).count == 0
    assert estimate_stars(noise).fwhm is None
    flat = np.full((200, 300), 1234, dtype=np.uint16)
    assert (estimate_stars(flat).count, estimate_stars(flat).fwhm) == (0, None)
    image, _ = star_field(0, 3.0, cosmics=20)
    assert estimate_stars(image).count == 0  # only cosmic rays


def test_simulator_stars():
    from camera_core.simframes import FrameSynthesizer

    synth = FrameSynthesizer(1024, 1024, seed=4, n_stars=80)
    stats = frame_stats(synth.frame(5.0, "object"), stars=True)
    assert 0.85 * 80 <= stats.stars <= 80  # a few blend or sit on the edges
    assert stats.fwhm_px == pytest.approx(1.5 * SIGMA_TO_FWHM, rel=0.1)


@pytest.mark.parametrize(
    "shape, max_size, expected",
    [
        ((3000, 2000), 1024, (666, 1000)),  # (rows, cols) -> (width, height)
        ((48, 64), 1024, (64, 48)),
        ((1025, 10), 1024, (5, 512)),
        ((4096, 4096), 1024, (1024, 1024)),
        ((700, 900), 300, (300, 233)),
    ],
)
def test_preview_size_keeps_the_aspect_ratio(tmp_path, shape, max_size, expected):
    rng = np.random.default_rng(1)
    data = rng.integers(900, 1100, shape, dtype=np.uint16)
    preview = write_preview(data, tmp_path / "p.png", max_size)
    with Image.open(preview.path) as image:
        assert image.format == "PNG" and image.mode == "L"
        assert image.size == expected == (preview.width, preview.height)
        assert max(image.size) <= max_size
        pixels = np.asarray(image)
    assert image.size[0] / image.size[1] == pytest.approx(
        shape[1] / shape[0], rel=2 / min(image.size)
    )
    assert int(pixels.max()) - int(pixels.min()) > 100  # not blank
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temporary left


def test_preview_is_block_averaged_zscaled_and_upright():
    data = np.full((400, 600), 1000.0)
    data[:4, :6] = 5000.0  # one bright 2x2 block at the origin (row 0)
    data[200:, :] += np.linspace(0, 20, 600)  # a faint gradient zscale shows
    image = preview_image(data, max_size=300)
    assert image.shape == (200, 300) and image.dtype == np.uint8
    # Row 0 of the frame is at the bottom of the picture.
    assert image[-1, 0] == image[-2, 2] == 255
    assert image[0, 0] < image[0, -1]  # the gradient is stretched, not lost
    assert np.all(image[-2:, 3:] == 0)
    # A constant frame, or one with bad pixels, still gives a picture.
    assert not preview_image(np.full((10, 10), 7.0)).any()
    bad = np.full((10, 10), np.nan)
    bad[0, 0] = 1.0
    assert preview_image(bad).shape == (10, 10)
    with pytest.raises(ValueError, match="max_size"):
        preview_image(data, 0)


def test_preview_path(tmp_path):
    data = tmp_path / "data"
    fits = data / "sim1" / "60000" / "sim1-0001.fits"
    assert preview_path(fits) == fits.with_name("sim1-0001.png")
    assert preview_path(data / "a.fits.gz").name == "a.png"
    assert preview_path(data / "a.fits.fz").name == "a.png"
    assert preview_path(data / "odd.png") == data / "odd.png.png"  # never itself
    previews = tmp_path / "previews"
    assert preview_path(fits, previews, data) == previews / "sim1/60000/sim1-0001.png"
    assert preview_path(tmp_path / "x.fits", previews, data) == previews / "x.png"


def test_unwritable_preview_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        write_preview(np.zeros((8, 8), np.uint16), blocker / "p.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


FRAME_4K = (4096, 4096)


@pytest.fixture(scope="module")
def frame_4k() -> np.ndarray:
    from camera_core.simframes import FrameSynthesizer

    synth = FrameSynthesizer(*FRAME_4K, seed=2, n_stars=1600, fast=True)
    return synth.frame(5.0, "object").copy()


def test_4k_frame_is_never_copied(frame_4k, tmp_path):
    """Stats, stars and preview allocate well under a copy of a 32 MB frame."""
    for work in (
        lambda: frame_stats(frame_4k, stars=True),
        lambda: write_preview(frame_4k, tmp_path / "p.png"),
    ):
        tracemalloc.start()
        try:
            work()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < frame_4k.nbytes / 2, peak


async def test_4k_quick_look_runs_off_the_loop(frame_4k, tmp_path):
    """As the actor runs it: both jobs in the executor, the loop stays live."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    start = time.perf_counter()
    stats, preview = await asyncio.gather(
        run_in_executor(frame_stats, frame_4k, None, True),
        run_in_executor(write_preview, frame_4k, tmp_path / "p.png"),
    )
    elapsed = time.perf_counter() - start
    done.set()
    await beat
    assert (preview.width, preview.height) == (1024, 1024)
    assert stats.stars > 1000 and stats.fwhm_px == pytest.approx(3.53, rel=0.1)
    assert elapsed < 5.0, elapsed  # about 0.25 s on a 2-core VM
    assert len(gaps) > 10 and max(gaps) < 0.25, max(gaps)  # about 15 ms
    print(
        f"4096x4096 stats+stars+PNG: {elapsed:.3f} s, max loop gap "
        f"{max(gaps) * 1e3:.1f} ms"
    )


@pytest.mark.parametrize(
    ("shape", "expected"), [((2, 4096), (1, 1024)), ((5000, 3), (1000, 1))]
)
def test_preview_of_a_strip(shape, expected):
    """A side shorter than the downsampling factor is averaged as a whole."""
    data = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    image = preview_image(data, max_size=1024)
    assert image.shape == expected
