"""Tests for header cards and FITS models in camera_core.models."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from camera_core.exceptions import (
    CardError,
    CardWarning,
    FITSModelError,
    FITSModelWarning,
    TemplateError,
)
from camera_core.models import (
    DEFAULT_CARDS,
    Card,
    CardGroup,
    DefaultCard,
    EvaluatedCard,
    Extension,
    FITSModel,
    HeaderModel,
    MacroCard,
    WCSCards,
    basic_fits_model,
    basic_fz_fits_model,
    basic_header_model,
)


class FakeCamera:
    __version__ = "1.10"

    def __init__(self) -> None:
        self.name = "cam1"
        self.uid = "0042"

    def get_temperature(self) -> np.float32:
        return np.float32(-20.5)

    async def get_status(self) -> dict[str, Any]:
        return {}


def make_exposure(data: np.ndarray | None = None, **kwargs: Any) -> SimpleNamespace:
    rng = np.random.default_rng(42)
    if data is None:
        data = rng.integers(0, 65536, size=(256, 256), dtype=np.uint16)
    attrs: dict[str, Any] = {
        "camera": FakeCamera(),
        "exptime": 1.5,
        "exptime_n": 4.5,
        "image_type": "object",
        "stack": 3,
        "stack_function": np.median,
        "obstime": Time("2024-03-01T12:00:00", format="isot", scale="utc"),
        "data": data,
        "wcs": None,
        "filename": "test.fits",
    }
    attrs.update(kwargs)
    return SimpleNamespace(**attrs)


@pytest.fixture
def exposure() -> SimpleNamespace:
    return make_exposure()


def test_default_cards(exposure: SimpleNamespace) -> None:
    header = basic_header_model.to_header(exposure)
    assert list(header.keys()) == [
        "VCAM",
        "BASECAMV",
        "CAMNAME",
        "CAMUID",
        "IMAGETYP",
        "EXPTIME",
        "EXPTIMEN",
        "STACK",
        "STACKFUN",
        "TIMESYS",
        "DATE-OBS",
    ]
    assert header["VCAM"] == "1.10"  # not autocast to 1.1
    assert header["CAMUID"] == "0042"
    assert header["CAMNAME"] == "cam1"
    assert header["EXPTIME"] == 1.5 and isinstance(header["EXPTIME"], float)
    assert header["EXPTIMEN"] == 4.5
    assert header["STACK"] == 3 and isinstance(header["STACK"], int)
    assert header["STACKFUN"] == "median"
    assert header["TIMESYS"] == "TAI"
    assert header["DATE-OBS"] == "2024-03-01T12:00:37.000"
    assert isinstance(header["BASECAMV"], str) and header["BASECAMV"]
    assert header.comments["EXPTIME"] == DEFAULT_CARDS["EXPTIME"].comment


def test_default_cards_read_only() -> None:
    assert isinstance(DEFAULT_CARDS["STACK"], DefaultCard)
    with pytest.raises(TypeError):
        DEFAULT_CARDS["FOO"] = Card("FOO", 1)  # type: ignore[index]


def test_stackfun_none_and_obstime(exposure: SimpleNamespace) -> None:
    exposure.stack_function = None
    assert Card("STACKFUN").evaluate(exposure).value == "none"
    obstime = Card("OBSTIME").evaluate(exposure).value
    assert obstime == "2024-03-01T12:00:37.000"


def test_bare_default_card_name() -> None:
    card = Card("exptime")
    assert card.name == "EXPTIME"
    assert card.value == "{__exposure__.exptime}"
    assert card.comment == DEFAULT_CARDS["EXPTIME"].comment
    assert Card("EXPTIME", comment="Other").comment == "Other"


def test_card_formats_and_casts(exposure: SimpleNamespace) -> None:
    assert Card("A", "{__exposure__.exptime:.2f}s").evaluate(exposure).value == "1.50s"
    assert Card("B", "{__exposure__.stack:03d}").evaluate(exposure).value == 3
    assert Card("C", "{__exposure__.stack:03d}", autocast=False).evaluate(exposure) == (
        "C",
        "003",
        "",
    )
    assert Card("D", "{__exposure__.stack}", type=float).evaluate(exposure).value == 3.0
    assert Card("E", "{'True'}").evaluate(exposure).value is True
    assert Card("E", "False").evaluate(exposure).value is False
    assert Card("E", "False", autocast=False).evaluate(exposure).value == "False"
    assert Card("E", "1e3").evaluate(exposure).value == 1000.0
    assert Card("E", "nan").evaluate(exposure).value == "nan"
    assert Card("F", np.int16(5)).evaluate(exposure).value == 5
    assert type(Card("F", np.int16(5)).evaluate(exposure).value) is int
    value = Card("G", "{__exposure__.obstime}").evaluate(exposure).value
    assert value == "2024-03-01T12:00:00.000"
    assert Card("H", "{{literal}}").evaluate(exposure).value == "{literal}"


def test_card_name_rules() -> None:
    with pytest.warns(CardWarning, match="trimming"):
        assert Card("observatory", "APO").name == "OBSERVAT"
    assert Card("HIERARCH long keyword name", 1).name == "HIERARCH LONG KEYWORD NAME"
    card = Card(("name", "value", "comment"))
    assert (card.name, card.value, card.comment) == ("NAME", "value", "comment")
    assert Card(["N2", 2]).value == 2


def test_card_is_immutable() -> None:
    card = Card("A", 1)
    with pytest.raises(AttributeError):
        card.value = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del card.value
    assert copy.deepcopy(card) is card
    assert card.context is not None
    with pytest.raises(TypeError):
        card.context["x"] = 1  # type: ignore[index]


def test_evaluate_expression_calls_get_method(exposure: SimpleNamespace) -> None:
    card = Card("CCDTEMP", "__camera__.get_temperature()", "Temp", evaluate=True)
    result = card.evaluate(exposure)
    assert result == EvaluatedCard("CCDTEMP", -20.5, "Temp")
    assert type(result.value) is float


def test_callable_value_with_fargs(exposure: SimpleNamespace) -> None:
    card = Card("SUM", lambda a, b: a + b, fargs=("{__exposure__.stack}", 10))
    assert card.evaluate(exposure).value == 13
    failing = Card("BAD", lambda: 1 / 0)
    with pytest.raises(CardError, match="BAD"):
        failing.evaluate(exposure)


def test_context(exposure: SimpleNamespace) -> None:
    card = Card("OBS", "{observer}-{site}", context={"observer": "me", "site": "APO"})
    assert card.evaluate(exposure).value == "me-APO"
    assert card.evaluate(exposure, context={"site": "LCO"}).value == "me-LCO"
    assert card.evaluate(exposure).value == "me-APO"


@pytest.mark.parametrize(
    "source",
    [
        "{__import__('os').system('x')}",
        "{().__class__.__bases__}",
        "{open('/etc/passwd')}",
        "{__camera__._private}",
        "{9**9**9}",
    ],
)
def test_malicious_card_values_rejected_at_build(source: str) -> None:
    with pytest.raises(TemplateError):
        Card("BAD", source)
    with pytest.raises(TemplateError):
        HeaderModel([("BAD", source, "comment")])
    with pytest.raises(TemplateError):
        CardGroup([("BAD", source)])
    with pytest.raises(TemplateError):
        Card("BAD", source.strip("{}"), evaluate=True)
    with pytest.raises(FITSModelError):  # TemplateError is a FITSModelError
        HeaderModel().append(("BAD", source))


def test_async_method_raises_card_error(exposure: SimpleNamespace) -> None:
    card = Card("STATUS", "__camera__.get_status()", evaluate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(CardError, match="async"):
            card.evaluate(exposure)


def test_missing_name(exposure: SimpleNamespace) -> None:
    with pytest.raises(TemplateError, match="'observer'"):
        Card("OBSERVER", "{observer}").evaluate(exposure)
    card = Card("OBSERVER", "{observer}", default="unknown")
    assert card.evaluate(exposure).value == "unknown"
    assert card.evaluate(exposure, context={"observer": "Ann"}).value == "Ann"
    with pytest.raises(CardError):  # attribute errors are not "missing names"
        Card("X", "{__exposure__.nope}", default=1).evaluate(exposure)


def test_card_group(exposure: SimpleNamespace) -> None:
    group = CardGroup(["EXPTIME", ("OBSERVER", "Ann", "Who"), Card("N", 1)], name="Obs")
    assert [card.name for card in group] == ["EXPTIME", "OBSERVER", "N"]
    assert group.evaluate(exposure)[1] == EvaluatedCard("OBSERVER", "Ann", "Who")
    plain = group.to_header(exposure)
    assert list(plain.keys()) == ["EXPTIME", "OBSERVER", "N"]
    titled = group.to_header(exposure, use_group_title=True)
    assert titled.cards[0].keyword == "COMMENT"
    assert "Obs" in str(titled["COMMENT"])
    header = HeaderModel(["STACK", group]).to_header(exposure)
    assert list(header.keys()) == ["STACK", "COMMENT", "EXPTIME", "OBSERVER", "N"]
    untitled = CardGroup([("A", 1)], name="No title", use_group_title=False)
    assert "COMMENT" not in HeaderModel([untitled]).to_header(exposure)
    with pytest.raises(CardError, match="not a default card"):
        CardGroup(["NOTADEFAULT"])
    with pytest.raises(CardError):
        group.append(42)


class ShapeMacro(MacroCard):
    def macro(self, exposure: Any, context: dict[str, Any] | None = None) -> list[Any]:
        ny, nx = exposure.data.shape
        return [
            ("NX", nx, "Columns"),
            ("NY", np.int64(ny)),
            Card("SCALE", "{scale}", default=self.kwargs["scale"]),
            CardGroup([("G1", "{__camera__.name}")]),
        ]


def test_macro_card(exposure: SimpleNamespace) -> None:
    macro = ShapeMacro(name="Shape", use_group_title=True, scale=2.5)
    cards = macro.evaluate(exposure)
    assert cards[0] == EvaluatedCard("NX", 256, "Columns")
    assert cards[1] == ("NY", 256, "") and type(cards[1].value) is int
    assert cards[2].value == 2.5
    assert cards[3].value == "cam1"
    assert macro.evaluate(exposure, context={"scale": 3})[2].value == 3
    header = HeaderModel(["CAMNAME", macro]).to_header(exposure)
    assert list(header.keys()) == ["CAMNAME", "COMMENT", "NX", "NY", "SCALE", "G1"]
    assert "Shape" in str(header["COMMENT"])
    assert "COMMENT" not in macro.to_header(exposure)
    with pytest.raises(TypeError):
        MacroCard()  # type: ignore[abstract]


def test_wcs_cards(exposure: SimpleNamespace) -> None:
    default = WCSCards().to_header(exposure)
    assert default["CDELT1"] == 1.0 and default["CRVAL1"] == 0.0
    assert default["WCSAXES"] == 2 and default["CRPIX1"] == 0.0
    assert WCS(default).wcs.naxis == 2

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.5]
    wcs.wcs.crpix = [128.0, 128.0]
    wcs.wcs.cdelt = [-0.0002, 0.0002]
    exposure.wcs = wcs
    header = HeaderModel(["EXPTIME", WCSCards()]).to_header(exposure)
    assert header["CTYPE1"] == "RA---TAN"
    assert header["CRVAL1"] == 150.0 and header["CRPIX2"] == 128.0
    roundtrip = WCS(header)
    assert np.allclose(roundtrip.wcs.crval, [150.0, 2.5])


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
