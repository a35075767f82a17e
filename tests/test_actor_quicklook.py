"""``frame_stats`` and ``preview`` after each written frame, over RabbitMQ.

A real actor with simulated cameras (seeded star fields) is driven with CLU's
AMQPClient; the keywords are checked against the FITS file and the PNG on
disk. The library itself is tested in tests/test_quicklook.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import camera, codes, errors, fits_files, ok
from astropy.io import fits
from PIL import Image

from camera_core.stars import SIGMA_TO_FWHM

#: The simulated frame: rows x columns, its stars and the preview's limit.
ROWS, COLS, N_STARS, MAX_SIZE = 1000, 1500, 60, 512


def quicklook_config(tmp_path, **quicklook):
    config = actor_config(
        tmp_path, width=COLS, height=ROWS, n_stars=N_STARS, time_factor=0.01
    )
    config["actor"]["quicklook"] = {"max_size": MAX_SIZE, **quicklook}
    return config


@pytest.fixture
async def ql_actor(tmp_path):
    actor = await start_actor(quicklook_config(tmp_path))
    yield actor
    await actor.stop()


def fits_data(path: str) -> np.ndarray:
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.data is not None:
                return np.asarray(hdu.data)
    raise AssertionError(f"{path} has no image data")


def one(command, keyword: str) -> dict:
    (value,) = keywords(command, keyword)
    return value


async def test_light_frame_stats_match_the_fits_file(ql_actor, client, tmp_path):
    command = await ok(client, ql_actor, "expose sim1 5")
    written, stats, preview = (
        one(command, k) for k in ("filename", "frame_stats", "preview")
    )
    # Reported after the filename, for the same frame.
    order = [k for r in command.replies for k in r.message]
    assert order.index("filename") < order.index("frame_stats")
    assert order.index("frame_stats") < order.index("preview")
    for value in (stats, preview):
        assert value["camera"] == "sim1" and value["error"] is None
        assert value["exposure_id"] == written["exposure_id"]
        assert value["filename"] == written["path"]

    data = fits_data(written["path"])
    assert data.shape == (ROWS, COLS) and data.dtype == np.uint16
    values = data.astype(np.float64)
    for key, expected in [
        ("median", np.median(values)),
        ("mean", np.mean(values)),
        ("std", np.std(values)),
        ("min", values.min()),
        ("max", values.max()),
    ]:
        assert stats[key] == pytest.approx(expected, rel=1e-9), key
    assert stats["saturation"] == 65535
    saturated = np.count_nonzero(data >= 65535)
    assert saturated > 0  # the brightest simulated stars saturate in 5 s
    assert stats["saturated_fraction"] == saturated / data.size  # exact
    assert 0.8 * N_STARS <= stats["stars"] <= N_STARS
    assert stats["fwhm_px"] == pytest.approx(1.5 * SIGMA_TO_FWHM, rel=0.2)

    png = fits_files(tmp_path, "sim1")[0].with_suffix(".png")
    assert preview["path"] == str(png)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.mode == "L"
        assert image.size == (preview["width"], preview["height"]) == (500, 333)
        pixels = np.asarray(image)
    assert max(image.size) <= MAX_SIZE
    assert image.size[0] / image.size[1] == pytest.approx(COLS / ROWS, rel=0.01)
    assert int(pixels.max()) - int(pixels.min()) > 100 and pixels.std() > 5
    assert np.count_nonzero(pixels == 255) > 20  # the stars show


async def test_bias_and_flat_frames_have_no_star_estimate(ql_actor, client):
    for flag in ("--bias", "--flat"):
        command = await ok(client, ql_actor, f"expose sim1 1 {flag}")
        stats = one(command, "frame_stats")
        assert stats["stars"] is None and stats["fwhm_px"] is None, flag
        assert stats["median"] is not None and stats["error"] is None
        assert one(command, "preview")["error"] is None


async def test_camera_saturation_setting(tmp_path, client):
    config = quicklook_config(tmp_path, stars=False)
    config["cameras"]["sim1"]["saturation"] = 2000
    actor = await start_actor(config)
    try:
        command = await ok(client, actor, "expose sim1 5")
        stats = one(command, "frame_stats")
        data = fits_data(one(command, "filename")["path"])
        assert stats["saturation"] == 2000
        assert stats["saturated_fraction"] == np.count_nonzero(data >= 2000) / data.size
        assert stats["stars"] is None  # stars: false
    finally:
        await actor.stop()


async def test_disabled_quicklook_does_nothing(tmp_path, client):
    actor = await start_actor(quicklook_config(tmp_path, enabled=False))
    try:
        command = await ok(client, actor, "expose sim1 1")
        assert not keywords(command, "frame_stats")
        assert not keywords(command, "preview")
        assert [p.suffix for p in (tmp_path / "data" / "sim1").iterdir()] == [".fits"]
    finally:
        await actor.stop()


async def test_preview_failure_is_a_warning(tmp_path, client):
    blocker = tmp_path / "data" / "previews"  # dir is relative to data_dir
    blocker.parent.mkdir()
    blocker.write_text("a file where the preview directory should be")
    actor = await start_actor(quicklook_config(tmp_path, dir="previews"))
    try:
        command = await ok(client, actor, "expose sim1 1 -c 2")
        previews = keywords(command, "preview")
        warned = [
            r.message["preview"]
            for r in command.replies
            if "preview" in r.message and r.message_code.value == "w"
        ]
        assert len(previews) == 2 and warned == previews
        for preview in previews:
            assert preview["width"] is None and preview["height"] is None
            assert "not written" in preview["error"]
            assert "actor.quicklook" in preview["error"]  # says what to do
            assert preview["path"].startswith(str(blocker))
        assert all(s["error"] is None for s in keywords(command, "frame_stats"))
        assert len(fits_files(tmp_path, "sim1")) == 2  # the frames are saved
        assert blocker.read_text().startswith("a file")
        assert codes(command)[-1] == ":"
    finally:
        await actor.stop()


async def test_preview_directory_mirrors_the_data_layout(tmp_path, client):
    actor = await start_actor(quicklook_config(tmp_path, dir=str(tmp_path / "ql")))
    try:
        command = await ok(client, actor, "expose sim1 1")
        preview = one(command, "preview")
        assert preview["path"] == str(tmp_path / "ql" / "sim1" / "sim1-0001.png")
        with Image.open(preview["path"]) as image:
            assert image.size == (500, 333)
        assert [p.suffix for p in (tmp_path / "data" / "sim1").iterdir()] == [".fits"]
    finally:
        await actor.stop()


async def test_spooled_frame_gets_no_quicklook(ql_actor, client, tmp_path):
    camera(ql_actor, "sim1").write_backoff = 0.01
    camera(ql_actor, "sim1").inject_fault("write_failure")
    command = await send(client, ql_actor, "expose sim1 1")
    assert one(command, "filename")["spooled"] is True, errors(command)
    assert not keywords(command, "frame_stats") and not keywords(command, "preview")
    assert not list((tmp_path / "spool").rglob("*.png"))
