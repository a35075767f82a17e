"""Click parameter types of the actor commands."""

from __future__ import annotations

import math
from typing import Any

import click

__all__ = ["FiniteFloatRange"]


class FiniteFloatRange(click.FloatRange):
    """A `click.FloatRange` that also refuses NaN and infinities.

    NaN compares false with every bound, so a plain `click.FloatRange` lets it
    through: ``--timeout nan`` became a timeout that never expires.
    """

    name = "finite float range"

    def _describe_range(self) -> str:
        # click writes "x<=None" for a range without bounds.
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)
