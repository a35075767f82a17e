"""A non-editable install ships the configuration and finds it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_config_and_installed_package_finds_it(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next((tmp_path / "dist").glob("camactor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "camactor_etc/camactor.yml" in names
    assert "camactor_schema/camactor.json" in names
    assert "camera_core/models/fits.py" in names
    assert not any(name.startswith("tests/") for name in names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import camera_core, camera_core.config as c, actor.actor as a;"
        "print(camera_core.__file__); print(c.default_config_path());"
        "print(a.default_schema_path())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0].startswith(str(target))
    config = Path(out[1])
    assert config.is_relative_to(target) and config.exists()
    assert "cameras:" in config.read_text()
    schema = Path(out[2])
    assert schema.is_relative_to(target) and schema.exists()
    assert '"exposure_state"' in schema.read_text()
