"""ImageNamer sequencing and template checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from astropy.time import Time

from camera_core import ImageNamer, TemplateError

CAMERA = SimpleNamespace(name="cam1", uid="S1")


def test_sequence_skips_existing_files(tmp_path):
    (tmp_path / "cam1-0001.fits").touch()
    (tmp_path / "cam1-0002.fits.gz").touch()  # a compressed twin also counts
    namer = ImageNamer("{camera.name}-{num:04d}.fits", dirname=str(tmp_path))
    assert namer(CAMERA).name == "cam1-0003.fits"
    assert namer(CAMERA).name == "cam1-0004.fits"


def test_overwrite_restarts_and_num_zero(tmp_path):
    (tmp_path / "cam1-0001.fits").touch()
    namer = ImageNamer(
        "{camera.name}-{num:04d}.fits", dirname=str(tmp_path), overwrite=True
    )
    assert namer(CAMERA).name == "cam1-0001.fits"
    assert namer(CAMERA, num=0).name == "cam1-0000.fits"
    assert namer(CAMERA).name == "cam1-0001.fits"


def test_reset_sequence_on_new_directory(tmp_path):
    namer = ImageNamer("{num:04d}.fits", dirname=str(tmp_path / "{camera.uid}"))
    assert namer(CAMERA).name == "0001.fits"
    other = SimpleNamespace(name="cam1", uid="S2")
    assert namer(other).name == "0001.fits"
    keep = ImageNamer(
        "{num:04d}.fits", dirname=str(tmp_path / "{camera.uid}"), reset_sequence=False
    )
    keep(CAMERA)
    assert keep(other).name == "0002.fits"


def test_mjd_directory(tmp_path):
    namer = ImageNamer("{num:04d}.fits", dirname=str(tmp_path / "{int(date.mjd)}"))
    assert namer(CAMERA).parent.name == str(int(Time.now().mjd))


@pytest.mark.parametrize(
    "basename",
    [
        "{camra.name}-{num}.fits",  # a typo is found when the namer is built
        "{__import__('os').getcwd()}-{num}.fits",
        "frame.fits",  # no sequence number
    ],
)
def test_bad_templates_fail_at_construction(basename):
    with pytest.raises(TemplateError):
        ImageNamer(basename)
