"""Header cards: single cards, groups of cards, and macros.

Card values are literals, callables, safe templates (`~camera_core.template.Template`)
or safe expressions (`~camera_core.template.Expression`). Templates are compiled when
the card is built, so an invalid or unsafe template raises `.TemplateError` at
configuration time. Cards are immutable, so they can be shared between models.

Value conversion lives in `camera_core.models.values`, and groups of cards
(`CardGroup`, `MacroCard`, `WCSCards`) in `camera_core.models.groups`; they are
re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from camera_core.exceptions import CardError, CardWarning
from camera_core.models.values import autocast as _autocast
from camera_core.models.values import to_fits_value
from camera_core.template import Expression, Template

__all__ = [
    "DEFAULT_CARDS",
    "Card",
    "CardGroup",
    "DefaultCard",
    "EvaluatedCard",
    "MacroCard",
    "WCSCards",
]


class EvaluatedCard(NamedTuple):
    """The result of evaluating a `.Card`."""

    name: str
    value: Any
    comment: str


def library_version() -> str:
    """Returns the version of this library (imported lazily; ``"0.0.0"`` if unset)."""
    import camera_core

    return str(getattr(camera_core, "__version__", None) or "0.0.0")


def _names(compiled: Any) -> frozenset[str]:
    if isinstance(compiled, (Template, Expression)):
        return compiled.names
    return frozenset()


def _normalise_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise CardError(f"invalid card name {name!r}.")
    name = name.strip().upper()
    if name.startswith("HIERARCH "):
        return name
    if len(name) > 8:
        warnings.warn(
            f"trimming card name {name!r} to 8 chars.", CardWarning, stacklevel=3
        )
        name = name[:8]
    return name


class Card:
    """A card representing a single entry in the header.

    Like astropy's `~astropy.io.fits.Card`, but its value is evaluated for each
    exposure when `.evaluate` is called. The value can be:

    - A Python literal.
    - A callable, called with ``fargs`` (evaluated with the same rules).
    - A string with ``{...}`` replacement fields, compiled as a safe
      `~camera_core.template.Template`. ``__exposure__`` and ``__camera__`` are
      always defined, e.g. ``'{__camera__.name}'`` or ``'{__exposure__.obstime}'``.
    - With ``evaluate=True``, a string compiled as a safe
      `~camera_core.template.Expression`, e.g. ``'__camera__.get_temperature()'``.

    Parameters
    ----------
    name
        The card name (upper-cased and trimmed to 8 characters unless it starts
        with ``HIERARCH``), or a ``(name, value[, comment])`` tuple. A bare
        default card name (e.g. ``Card('EXPTIME')``) takes its value and comment
        from `DEFAULT_CARDS`.
    value
        A literal, callable, or string as described above.
    comment
        A short comment describing the card value.
    default
        Value to use if the value uses a context name that is not defined.
    type
        A type (or callable) to cast the value to after evaluation.
    autocast
        If `True` and ``type`` is not set, strings that look like an integer,
        float or boolean are converted.
    fargs
        Arguments for a callable ``value``.
    evaluate
        If `True`, ``value`` is a string with a single safe expression.
    context
        Names available to the value's template, in addition to ``__exposure__``
        and ``__camera__``.

    Raises
    ------
    TemplateError
        If a template or expression is invalid or not allowed.
    """

    __slots__ = ("_compiled", "_compiled_fargs", "autocast", "comment", "context")
    __slots__ += ("default", "evaluate_value", "fargs", "name", "type", "value")

    def __init__(
        self,
        name: str | Sequence[Any],
        value: Any = None,
        comment: str = "",
        default: Any = None,
        type: Callable[[Any], Any] | None = None,
        autocast: bool = True,
        fargs: Iterable[Any] | None = None,
        evaluate: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(name, (tuple, list)):
            if not 1 <= len(name) <= 3:
                raise CardError(f"invalid card {name!r}: use (name, value[, comment]).")
            name, value, comment = (*name, *(value, comment)[len(name) - 1 :])
        name = _normalise_name(name)
        base = None if isinstance(self, DefaultCard) else DEFAULT_CARDS.get(name)
        if base is not None and value is None:
            value, evaluate, comment = (
                base.value,
                base.evaluate_value,
                comment or base.comment,
            )
            default = base.default if default is None else default
            type = base.type if type is None else type
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "value", value)
        set_(self, "comment", str(comment or ""))
        set_(self, "default", default)
        set_(self, "type", type)
        set_(self, "autocast", bool(autocast))
        set_(self, "fargs", tuple(fargs or ()))
        set_(self, "evaluate_value", bool(evaluate))
        set_(self, "context", MappingProxyType(dict(context or {})))
        set_(self, "_compiled", self._compile(self.value))
        set_(self, "_compiled_fargs", tuple(self._compile(a) for a in self.fargs))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable.")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable.")

    def __copy__(self) -> Card:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Card:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (name={self.name!r}, value={self.value!r})>"

    def _compile(self, value: Any) -> Any:
        if isinstance(value, str):
            if self.evaluate_value:
                return Expression(value)
            if "{" in value or "}" in value:
                return Template(value)
        return value

    @staticmethod
    def _value_of(compiled: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(compiled, (Template, Expression)):
            return compiled.evaluate(context)
        return compiled

    def evaluate(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> EvaluatedCard:
        """Evaluates the card for an exposure.

        Parameters
        ----------
        exposure
            The exposure for which we want to evaluate the card.
        context
            Names used to evaluate the value; they update the card's context.

        Returns
        -------
        EvaluatedCard
            A tuple with the name, evaluated value, and comment for this card.

        Raises
        ------
        TemplateError
            If a name is missing and no ``default`` is set.
        CardError
            If evaluating or casting the value fails.
        """
        ctx: dict[str, Any] = {
            "__exposure__": exposure,
            "__camera__": getattr(exposure, "camera", None),
            **self.context,
            **(context or {}),
        }
        names = {n for c in (self._compiled, *self._compiled_fargs) for n in _names(c)}
        if self.default is not None and not names <= ctx.keys():
            value = self.default
        elif callable(self._compiled):
            args = [self._value_of(arg, ctx) for arg in self._compiled_fargs]
            try:
                value = self._compiled(*args)
            except CardError:
                raise
            except Exception as err:
                raise CardError(
                    f"card {self.name}: calling value failed: {err}"
                ) from err
        else:
            value = self._value_of(self._compiled, ctx)
        return EvaluatedCard(self.name, self._cast(value), self.comment)

    def _cast(self, value: Any) -> Any:
        if self.type is not None and value is not None:
            try:
                value = self.type(value)
            except Exception as err:
                raise CardError(
                    f"card {self.name}: cannot cast {value!r}: {err}"
                ) from err
        elif self.autocast:
            value = _autocast(value)
        return to_fits_value(value)


class DefaultCard(Card):
    """A card defined in `DEFAULT_CARDS`."""

    __slots__ = ()


# Identifiers and versions are always strings (autocast would turn "1.10" into 1.1).
_DEFAULTS: tuple[tuple[str, Any, str, type | None], ...] = (
    ("VCAM", "{__camera__.__version__}", "Version of the camera library", str),
    ("BASECAMV", library_version, "Version of camera_core", str),
    ("CAMNAME", "{__camera__.name}", "Camera name", str),
    ("CAMUID", "{__camera__.uid}", "Camera UID", str),
    (
        "EXPTIME",
        "{__exposure__.exptime}",
        "Exposure time of single integration [s]",
        None,
    ),
    ("EXPTIMEN", "{__exposure__.exptime_n}", "Total exposure time [s]", None),
    ("IMAGETYP", "{__exposure__.image_type}", "The image type of the file", str),
    ("OBSTIME", "{__exposure__.obstime.tai}", "Start of the exposure [TAI]", str),
    ("STACK", "{__exposure__.stack}", "Number of stacked frames", None),
    (
        "STACKFUN",
        "{'none' if __exposure__.stack_function is None "
        "else __exposure__.stack_function.__name__}",
        "Function used for stacking",
        str,
    ),
)

#: Default cards, by name (read-only). ``Card(name)`` builds one from here.
DEFAULT_CARDS: Mapping[str, DefaultCard] = MappingProxyType(
    {
        name: DefaultCard(name, value, comment, type=type_)
        for name, value, comment, type_ in _DEFAULTS
    }
)

# Imported last: groups.py needs Card, EvaluatedCard and DEFAULT_CARDS from here.
from camera_core.models.groups import (  # noqa: E402, F401
    CardGroup,
    MacroCard,
    WCSCards,
    add_to_header,
    group_title,
)
