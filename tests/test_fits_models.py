"""Tests for header models, extensions and FITS models."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from model_fakes import make_exposure

from camera_core.exceptions import (
    FITSModelError,
    FITSModelWarning,
)
from camera_core.models import (
    Card,
    CardGroup,
    Extension,
    FITSModel,
    HeaderModel,
    basic_fits_model,
    basic_fz_fits_model,
    basic_header_model,
)


@pytest.fixture
def exposure() -> SimpleNamespace:
    return make_exposure()


def test_header_model_conversion_and_errors() -> None:
    model = HeaderModel(["EXPTIME", None, ("A", 1), Card("B", 2)])
    assert [card.name for card in model] == ["EXPTIME", "A", "B"]
    model.append(None)
    model.insert(0, "STACK")
    model.extend([("C", 3), None])
    assert [card.name for card in model] == ["STACK", "EXPTIME", "A", "B", "C"]
    with pytest.raises(FITSModelError, match="not a default card"):
        HeaderModel(["NOTADEFAULT"])
    with pytest.raises(FITSModelError):
        HeaderModel([42])
    with pytest.raises(FITSModelError):
        model.append(object())


def test_per_exposure_copy_leaves_original_unchanged(exposure: SimpleNamespace) -> None:
    original_cards = list(basic_fits_model[0].header_model)
    original_header = basic_fits_model.to_hdu(exposure)[0].header

    model = basic_fits_model.copy()
    assert model is not basic_fits_model
    assert model[0] is not basic_fits_model[0]
    assert model[0].header_model is not basic_fits_model[0].header_model
    assert model[0].header_model[0] is basic_fits_model[0].header_model[0]  # shared

    model[0].header_model.append(("OBSERVER", "{observer}", "Observer"))
    model[0].header_model.insert(0, ("FIRST", 1))
    model.context["observer"] = "Ann"
    model.append(Extension(data="none", name="EXTRA"))

    hdus = model.to_hdu(exposure)
    assert hdus[0].header["OBSERVER"] == "Ann"
    assert "EXTRA" in hdus

    assert list(basic_fits_model[0].header_model) == original_cards
    assert basic_fits_model.context == {}
    assert len(basic_fits_model) == 1
    new_original = basic_fits_model.to_hdu(exposure)[0].header
    assert "OBSERVER" not in new_original and "FIRST" not in new_original
    assert list(new_original.keys()) == list(original_header.keys())
    assert len(basic_header_model) == 11

    copied_group = HeaderModel([CardGroup([("A", 1)], name="g")]).copy()
    copied_group[0].append(("B", 2))
    assert len(copied_group[0]) == 2


def test_fits_model_default_and_validation(exposure: SimpleNamespace) -> None:
    model = FITSModel()
    assert len(model) == 1 and model[0].compressed is False
    assert [c.name for c in model[0].header_model] == [
        c.name for c in basic_header_model
    ]
    with pytest.raises(FITSModelError):
        FITSModel([HeaderModel()])  # type: ignore[list-item]
    with pytest.raises(FITSModelError):
        model.append("not an extension")  # type: ignore[arg-type]


def test_extension_validation() -> None:
    assert Extension(compressed=True).compressed == "RICE_1"
    assert Extension(compressed="gzip_2").compressed == "GZIP_2"
    assert Extension(compressed=False).compressed is False
    with pytest.raises(FITSModelError, match="invalid compression"):
        Extension(compressed="ZIP")
    with pytest.raises(FITSModelError, match="unknown compression parameters"):
        Extension(compressed="RICE_1", compression_params={"compression_type": "X"})
    with pytest.raises(FITSModelError, match="invalid extension data"):
        Extension(data="processed")  # type: ignore[arg-type]


def test_extension_data(exposure: SimpleNamespace) -> None:
    array = np.ones((4, 4), dtype=np.float32)
    assert Extension(data=None).get_data(exposure) is exposure.data
    assert Extension(data="raw").get_data(exposure) is exposure.data
    assert Extension(data=True).get_data(exposure) is exposure.data
    assert Extension(data="none").get_data(exposure) is None
    assert Extension(data=False).get_data(exposure) is None
    assert Extension(data=array).get_data(exposure) is array


def test_uncompressed_model_does_not_copy_frame(
    exposure: SimpleNamespace, tmp_path: Path
) -> None:
    hdus = basic_fits_model.to_hdu(exposure)
    assert len(hdus) == 1 and isinstance(hdus[0], fits.PrimaryHDU)
    assert np.shares_memory(hdus[0].data, exposure.data)
    before = exposure.data.copy()
    path = tmp_path / "raw.fits"
    hdus.writeto(path, checksum=True)
    assert np.array_equal(exposure.data, before)  # writing does not alter the frame
    with fits.open(path, checksum=True) as hdul:
        assert hdul[0].data.dtype == np.uint16
        assert hdul[0].header["BZERO"] == 32768
        assert np.array_equal(hdul[0].data, before)


def _assert_valid_checksums(path: Path) -> None:
    with fits.open(path, disable_image_compression=True) as raw:
        for hdu in raw:
            assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header
            assert hdu.verify_checksum() == 1
            assert hdu.verify_datasum() == 1


@pytest.mark.parametrize("compression", ["RICE_1", "GZIP_2"])
def test_compressed_uint16_round_trip(
    exposure: SimpleNamespace, tmp_path: Path, compression: str
) -> None:
    model = FITSModel(
        [Extension(header_model=basic_header_model, compressed=compression)]
    )
    hdus = model.to_hdu(exposure)
    assert isinstance(hdus[0], fits.PrimaryHDU) and hdus[0].data is None
    assert isinstance(hdus[1], fits.CompImageHDU)
    path = tmp_path / f"{compression}.fits.fz"
    hdus.writeto(path, checksum=True)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy warns on checksum mismatch
        with fits.open(path, checksum=True) as hdul:
            assert hdul[1].data.dtype == np.uint16
            assert np.array_equal(hdul[1].data, exposure.data)
            assert hdul[1].header["EXPTIME"] == 1.5
    with fits.open(path, disable_image_compression=True) as raw:
        assert raw[1].header["ZCMPTYPE"] == compression
    _assert_valid_checksums(path)

    # The checksum check is able to fail.
    content = bytearray(path.read_bytes())
    content[-100] ^= 0xFF
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(bytes(content))
    with fits.open(corrupt, disable_image_compression=True) as raw:
        assert raw[1].verify_datasum() == 0


def test_basic_fz_model(exposure: SimpleNamespace, tmp_path: Path) -> None:
    hdus = basic_fz_fits_model.to_hdu(exposure)
    assert len(hdus) == 2 and isinstance(hdus[1], fits.CompImageHDU)
    hdus.writeto(tmp_path / "basic.fits.fz", checksum=True)
    with fits.open(tmp_path / "basic.fits.fz") as hdul:
        assert np.array_equal(hdul[1].data, exposure.data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("compression", ["GZIP_2", "GZIP_1", "RICE_1"])
def test_float_compression_is_lossless(
    tmp_path: Path, dtype: type, compression: str
) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(1000.0, 50.0, size=(64, 96)).astype(dtype)
    data[0, 0], data[1, 1] = np.nan, np.inf
    exposure = make_exposure(data=data)
    model = FITSModel([Extension(compressed=compression)])
    if compression == "RICE_1":
        with pytest.warns(FITSModelWarning, match="GZIP_2"):
            hdus = model.to_hdu(exposure)
    else:
        hdus = model.to_hdu(exposure)
    path = tmp_path / "float.fits.fz"
    hdus.writeto(path, checksum=True)
    with fits.open(path, checksum=True) as hdul:
        assert hdul[1].data.dtype == dtype
        np.testing.assert_array_equal(hdul[1].data, data)
    _assert_valid_checksums(path)


def test_float_quantization_when_requested(tmp_path: Path) -> None:
    data = np.random.default_rng(2).normal(1000.0, 50.0, size=(64, 64))
    exposure = make_exposure(data=data.astype(np.float32))
    params = {"quantize_level": 4.0}
    model = FITSModel([Extension(compressed="RICE_1", compression_params=params)])
    path = tmp_path / "lossy.fits.fz"
    model.to_hdu(exposure).writeto(path)
    with fits.open(path) as hdul:
        assert not np.array_equal(hdul[1].data, exposure.data)
        np.testing.assert_allclose(hdul[1].data, exposure.data, atol=50.0)
    truncating = Extension(
        compressed="RICE_1", compression_params={"quantize_level": 0}
    )
    with pytest.raises(FITSModelError, match="truncate"):
        truncating.to_hdu(exposure)


def test_extra_hdus(exposure: SimpleNamespace) -> None:
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="J", array=np.arange(3))], name="TABLE"
    )
    image = fits.ImageHDU(np.zeros((2, 2)), name="FIRST")
    exposure._extra_hdus = [(table, None), (image, 1)]
    hdus = basic_fits_model.to_hdu(exposure)
    assert [hdu.name for hdu in hdus] == ["PRIMARY", "FIRST", "TABLE"]


def test_multi_extension_model(exposure: SimpleNamespace) -> None:
    model = FITSModel(
        [
            Extension(data="none", header_model=["CAMNAME"], name="PRIMARY"),
            Extension(data="raw", header_model=["EXPTIME"], name="RAW"),
        ],
        context={"x": 1},
    )
    hdus = model.to_hdu(exposure)
    assert isinstance(hdus[0], fits.PrimaryHDU) and hdus[0].data is None
    assert isinstance(hdus[1], fits.ImageHDU) and hdus[1].name == "RAW"
    assert hdus[1].header["EXPTIME"] == 1.5
