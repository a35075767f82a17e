"""Groups of header cards: card groups, macros, and the WCS macro.

`CardGroup` and `MacroCard` evaluate to several cards; both can add their cards
to a header with `to_header`. They are re-exported by `camera_core.models.card`.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from astropy.io import fits
from astropy.wcs import WCS

from camera_core.exceptions import CardError, CardWarning
from camera_core.models.card import DEFAULT_CARDS, Card, EvaluatedCard
from camera_core.models.values import to_fits_value

__all__ = [
    "CardGroup",
    "MacroCard",
    "WCSCards",
    "add_to_header",
    "group_title",
]


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
