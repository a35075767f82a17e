"""The foreground demo behind `make run` exposes the default cameras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_frames_for_default_cameras(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "actor",
            "-c",
            str(ROOT / "etc" / "camactor.yml"),
            "demo",
            "--count",
            "1",
            "--exptime",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("*.fits"))
    assert [f.name for f in files] == ["sim1-0001.fits", "sim2-0001.fits"]
    with fits.open(files[0], checksum=True) as hdul:
        assert hdul[0].data.shape == (2048, 2048)
        assert hdul[0].header["CAMNAME"] == "sim1"
    assert "sim1: written" in result.stdout


def test_default_config_writes_under_the_data_dir(tmp_path):
    """--data-dir (or CAMACTOR_DATA_DIR) moves the default cameras' images."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "actor",
            "-c",
            str(ROOT / "etc" / "camactor.yml"),
            "--data-dir",
            str(tmp_path / "elsewhere"),
            "demo",
            "--count",
            "1",
            "--exptime",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "elsewhere").glob("*/*/*.fits"))
    # <data_dir>/<camera>/<MJD>/<camera>-NNNN.fits, from actor.image_dir
    assert [(f.parent.parent.name, f.name) for f in files] == [
        ("sim1", "sim1-0001.fits"),
        ("sim2", "sim2-0001.fits"),
    ]
    assert files[0].parent.name.isdigit()
    assert not (tmp_path / "camactor-data").exists()
