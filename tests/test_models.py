"""Tests for header cards and FITS models in camera_core.models."""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from astropy.wcs import WCS
from model_fakes import make_exposure

from camera_core.exceptions import (
    CardError,
    CardWarning,
    FITSModelError,
    TemplateError,
)
from camera_core.models import (
    DEFAULT_CARDS,
    Card,
    CardGroup,
    DefaultCard,
    EvaluatedCard,
    HeaderModel,
    MacroCard,
    WCSCards,
    basic_header_model,
)


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
