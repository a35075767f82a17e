"""Click parameter types of the actor commands."""

from __future__ import annotations

import click
import pytest

from actor.commands import build_parser
from actor.params import FiniteFloatRange
from camera_core.simulator import SimulatedCamera


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_values_are_refused(value):
    with pytest.raises(click.BadParameter, match="not a finite number"):
        FiniteFloatRange(min=0).convert(value, None, None)


def test_bounds_still_apply():
    assert FiniteFloatRange(min=0).convert("1.5", None, None) == 1.5
    with pytest.raises(click.BadParameter):
        FiniteFloatRange(min=0).convert("-1", None, None)


def test_help_describes_an_unbounded_range_sensibly():
    gain = build_parser(SimulatedCamera).commands["gain"]
    with click.Context(gain) as ctx:
        text = gain.get_help(ctx)
    assert "None" not in text and "[finite]" in text
