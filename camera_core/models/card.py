"""Header cards: single cards, groups of cards, and macros.

Card values are literals, callables, safe templates (`~camera_core.template.Template`)
or safe expressions (`~camera_core.template.Expression`). Templates are compiled when
the card is built, so an invalid or unsafe template raises `.TemplateError` at
configuration time. Cards are immutable, so they can be shared between models.
"""

from __future__ import annotations

import abc
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy
from astropy.io import fits
from astropy.wcs import WCS

from camera_core.exceptions import CardError, CardWarning
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

_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FITS_TYPES = (str, bool, int, float, complex, type(None), fits.card.Undefined)


class EvaluatedCard(NamedTuple):
    """The result of evaluating a `.Card`."""

    name: str
    value: Any
    comment: str


def library_version() -> str:
    """Returns the version of this library (imported lazily; ``"0.0.0"`` if unset)."""
    import camera_core

    return str(getattr(camera_core, "__version__", None) or "0.0.0")


def to_fits_value(value: Any) -> Any:
    """Converts a value into something astropy can store in a header card."""
    if isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, _FITS_TYPES):
        return value
    return str(value)


def _autocast(value: Any) -> Any:
    if not isinstance(value, str) or len(value) > 64:
        return value
    text = value.strip()
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    if text in ("True", "False"):
        return text == "True"
    return value


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


def _as_card(item: Any) -> Card:
    """Converts a card-like element (Card, tuple/list, default name) to a Card."""
    if isinstance(item, Card):
        return item
    if isinstance(item, (tuple, list)):
        return Card(item)
    if isinstance(item, str):
        if item.strip().upper() not in DEFAULT_CARDS:
            raise CardError(
                f"{item!r} is not a default card ({', '.join(DEFAULT_CARDS)}); "
                "use a (name, value, comment) tuple or a Card."
            )
        return DEFAULT_CARDS[item.strip().upper()]
    raise CardError(f"cannot convert {item!r} to a Card.")


def group_title(name: str) -> tuple[str, str]:
    """Returns the COMMENT card used as the title of a group of cards."""
    return ("COMMENT", f"{' ' + name + ' ':#^30}")


_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})


def add_to_header(header: fits.Header, card: EvaluatedCard | tuple[Any, ...]) -> None:
    """Adds a card to a header, replacing (with a warning) a repeated keyword."""
    name, value, comment = (*card, "")[:3]
    if name.upper() not in _COMMENTARY and name in header:
        warnings.warn(
            f"keyword {name} repeated; using last value.", CardWarning, stacklevel=2
        )
        header[name] = (value, comment)
    else:
        header.append((name, value, comment), end=True)


class _HeaderSource:
    """Shared `to_header` for card groups and macros."""

    name: str | None

    evaluate: Callable[..., list[EvaluatedCard]]

    def to_header(
        self,
        exposure: Any,
        context: Mapping[str, Any] | None = None,
        use_group_title: bool = False,
    ) -> fits.Header:
        """Evaluates the cards and returns a header.

        Parameters
        ----------
        exposure
            The exposure for which we want to evaluate the cards.
        context
            Names used to evaluate the cards.
        use_group_title
            Whether to prepend a COMMENT card with the group title.

        Returns
        -------
        header
            A `~astropy.io.fits.Header` with the evaluated cards.
        """
        header = fits.Header()
        if use_group_title and self.name:
            header.append(group_title(self.name), end=True)
        for card in self.evaluate(exposure, context):
            add_to_header(header, card)
        return header


class CardGroup(_HeaderSource, list):
    """A group of `.Card` instances.

    Parameters
    ----------
    cards
        `.Card` instances, ``(name, value[, comment])`` tuples, or default card
        names.
    name
        A name for the card group.
    use_group_title
        Whether a header model prepends a COMMENT card with the group title.
    """

    def __init__(
        self,
        cards: Iterable[Card | Sequence[Any] | str] | None = None,
        name: str | None = None,
        use_group_title: bool = True,
    ) -> None:
        super().__init__(_as_card(card) for card in cards or ())
        self.name = name
        self.use_group_title = use_group_title

    def __repr__(self) -> str:
        return f"<CardGroup (name={self.name!r}) {list.__repr__(self)}>"

    def append(self, card: Card | Sequence[Any] | str) -> None:
        super().append(_as_card(card))

    def insert(self, index: Any, card: Card | Sequence[Any] | str) -> None:
        super().insert(index, _as_card(card))

    def extend(self, cards: Iterable[Card | Sequence[Any] | str]) -> None:
        super().extend(_as_card(card) for card in cards)

    def copy(self) -> CardGroup:
        """Returns a new group with the same (immutable) cards."""
        return CardGroup(self, name=self.name, use_group_title=self.use_group_title)

    def evaluate(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> list[EvaluatedCard]:
        """Evaluates all the cards (see `.Card.evaluate`).

        Returns
        -------
        list
            An `.EvaluatedCard` for each card.
        """
        return [card.evaluate(exposure, context=context) for card in self]


class MacroCard(_HeaderSource, abc.ABC):
    """A macro that returns a list of cards when evaluated.

    Subclasses override `.macro`.

    Parameters
    ----------
    name
        A name for the macro group.
    use_group_title
        Whether a header model prepends a COMMENT card with the macro title.
    kwargs
        Additional arguments for the macro, available as ``self.kwargs``.
    """

    def __init__(
        self, name: str | None = None, use_group_title: bool = False, **kwargs: Any
    ) -> None:
        self.name = name
        self.use_group_title = use_group_title
        self.kwargs: Mapping[str, Any] = MappingProxyType(dict(kwargs))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (name={self.name!r})>"

    @abc.abstractmethod
    def macro(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> Iterable[Any]:
        """The macro, called with the exposure and the evaluation context.

        Returns
        -------
        items
            ``(keyword, value[, comment])`` tuples (used literally), `.Card`
            instances, or `.CardGroup` instances (which are evaluated).
        """

    def evaluate(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> list[EvaluatedCard]:
        """Evaluates the macro and flattens its output.

        Returns
        -------
        list
            An `.EvaluatedCard` for each card returned by `.macro`.
        """
        cards: list[EvaluatedCard] = []
        for item in self.macro(exposure, context=context) or ():
            if isinstance(item, (Card, CardGroup, MacroCard)):
                result = item.evaluate(exposure, context=context)
                cards.extend([result] if isinstance(item, Card) else result)
            elif isinstance(item, (tuple, list)) and 2 <= len(item) <= 3:
                key, value, comment = (*item, "")[:3]
                cards.append(EvaluatedCard(str(key), to_fits_value(value), comment))
            else:
                raise CardError(f"{type(self).__name__}: invalid macro item {item!r}")
        return cards


class WCSCards(MacroCard):
    """A macro that adds the WCS of the exposure (``exposure.wcs``).

    If ``exposure.wcs`` is `None`, a default identity (pixel) WCS is added.
    """

    def macro(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> list[tuple[str, Any, str]]:
        """Returns the WCS header cards as ``(keyword, value, comment)``."""
        wcs = getattr(exposure, "wcs", None)
        if wcs is None:
            wcs = WCS(naxis=2)
        return [(c.keyword, c.value, c.comment) for c in wcs.to_header().cards]


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
