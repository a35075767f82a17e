"""The actor's reply validator gives CLU's verdicts, faster."""

from __future__ import annotations

import json

import jsonschema
import numpy
import pytest
from clu.model import Model
from hypothesis import given, settings
from hypothesis import strategies as st

from actor.actor import default_schema_path
from actor.validation import FastValidator, install_validator


@pytest.fixture(scope="module")
def models() -> tuple[Model, Model]:
    """CLU's model of our schema, and the same model with our validator."""
    clu_model = Model("cam", str(default_schema_path()))
    ours = Model("cam", str(default_schema_path()))
    install_validator(ours)
    return clu_model, ours


SCHEMA = json.loads(default_schema_path().read_text())
KEYS = st.sampled_from([*sorted(SCHEMA["properties"]), "not_a_keyword"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["sim1", "idle", "object", "integrating", "open"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["camera", "uid", "state", "value", "x", "name", "error"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(instance=st.dictionaries(KEYS, VALUES, max_size=3))
def test_same_verdict_as_clu(models, instance):
    clu_model, ours = models
    assert ours.validator.is_valid(instance) == clu_model.validator.is_valid(instance)


def test_valid_status_reply_passes(models):
    _, ours = models
    ok, err = ours.validate({"default_cameras": ("sim1", "sim2")}, update_model=False)
    assert ok and err is None


def test_invalid_reply_raises_clus_error(models):
    _, ours = models
    assert isinstance(ours.validator, FastValidator)
    ok, err = ours.validate({"not_a_keyword": 1}, update_model=False)
    assert not ok
    assert isinstance(err, jsonschema.ValidationError)
    assert "not_a_keyword" in err.message


def test_numpy_values_get_clus_verdict(models):
    clu_model, ours = models
    instance = {"text": numpy.str_("hello")}
    assert ours.validator.is_valid(instance) == clu_model.validator.is_valid(instance)
    assert ours.validator.is_valid(instance)
