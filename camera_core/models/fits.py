"""FITS models: header models, extensions, and full FITS file models."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

import numpy
from astropy.io import fits

from camera_core.exceptions import FITSModelError, FITSModelWarning
from camera_core.models.card import (
    DEFAULT_CARDS,
    Card,
    CardGroup,
    MacroCard,
    add_to_header,
    group_title,
)

__all__ = ["COMPRESSION_TYPES", "Extension", "FITSModel", "HeaderModel"]

HeaderItem = Card | CardGroup | MacroCard | str | tuple | list | None
ImageHDU = fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU

#: Compression types accepted by `~astropy.io.fits.CompImageHDU`.
COMPRESSION_TYPES = (
    "RICE_1",
    "GZIP_1",
    "GZIP_2",
    "HCOMPRESS_1",
    "PLIO_1",
    "NOCOMPRESS",
)
_LOSSLESS_FLOAT_TYPES = frozenset({"GZIP_1", "GZIP_2", "NOCOMPRESS"})
_COMPRESSION_PARAMS = frozenset(
    {"tile_shape", "hcomp_scale", "hcomp_smooth", "quantize_level"}
    | {"quantize_method", "dither_seed"}
)


def _to_header_item(item: HeaderItem) -> Card | CardGroup | MacroCard | None:
    if item is None or isinstance(item, (Card, CardGroup, MacroCard)):
        return item
    if isinstance(item, str):
        if item.strip().upper() not in DEFAULT_CARDS:
            raise FITSModelError(
                f"{item!r} is not a default card ({', '.join(DEFAULT_CARDS)}). Use "
                "Card(name, value, comment) or a (name, value, comment) tuple."
            )
        return DEFAULT_CARDS[item.strip().upper()]
    if isinstance(item, (tuple, list)):
        return Card(item)
    raise FITSModelError(
        f"cannot add {item!r} to a header model: use a Card, CardGroup, MacroCard, "
        "a default card name, or a (name, value, comment) tuple."
    )


class HeaderModel(list):
    """A model defining the header of an HDU.

    Parameters
    ----------
    cards
        `.Card`, `.CardGroup` or `.MacroCard` instances, names of default cards,
        or ``(name, value[, comment])`` tuples. `None` elements are skipped.

    Examples
    --------
    >>> header_model = HeaderModel([Card('TELESCOP', 'APO-2.5', 'The telescope'),
    ...                             'EXPTIME',
    ...                             ('CAMNAME', '{__camera__.name}', 'Camera')])
    """

    def __init__(self, cards: Iterable[HeaderItem] | None = None) -> None:
        super().__init__()
        self.extend(cards or ())

    def __repr__(self) -> str:
        return f"<HeaderModel {list.__repr__(self)}>"

    def append(self, card: HeaderItem) -> None:
        """Converts and appends a card (`None` is ignored)."""
        item = _to_header_item(card)
        if item is not None:
            super().append(item)

    def insert(self, index: Any, card: HeaderItem) -> None:
        """Converts and inserts a card before ``index`` (`None` is ignored)."""
        item = _to_header_item(card)
        if item is not None:
            super().insert(index, item)

    def extend(self, cards: Iterable[HeaderItem]) -> None:
        """Converts and appends several cards."""
        items = [_to_header_item(card) for card in cards]
        super().extend(item for item in items if item is not None)

    def copy(self) -> HeaderModel:
        """Returns a new model sharing the immutable cards (groups are copied)."""
        return HeaderModel(
            item.copy() if isinstance(item, CardGroup) else item for item in self
        )

    def to_header(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> fits.Header:
        """Evaluates the header model for an exposure and returns a header.

        Parameters
        ----------
        exposure
            The exposure for which we want to evaluate the model.
        context
            Names used to evaluate the cards in the model.

        Returns
        -------
        header
            A `~astropy.io.fits.Header` with the evaluated cards.
        """
        header = fits.Header()
        for item in self:
            if isinstance(item, Card):
                add_to_header(header, item.evaluate(exposure, context=context))
                continue
            if item.use_group_title and item.name:
                header.append(group_title(item.name), end=True)
            for card in item.evaluate(exposure, context=context):
                add_to_header(header, card)
        return header


def _compression_type(compressed: bool | str | None) -> str | Literal[False]:
    if compressed is None or compressed is False:
        return False
    if compressed is True:
        return "RICE_1"
    if isinstance(compressed, str):
        ctype = compressed.strip().upper().replace("RICE_ONE", "RICE_1")
        if ctype in COMPRESSION_TYPES:
            return ctype
    raise FITSModelError(
        f"invalid compression {compressed!r}: use False, True (RICE_1) or one of "
        f"{', '.join(COMPRESSION_TYPES)}."
    )


class Extension:
    """A model for a FITS extension.

    Parameters
    ----------
    data
        ``'raw'``, `None` or `True` for the exposure data (not copied); ``'none'``
        or `False` for no data; or an array.
    header_model
        A `.HeaderModel` (or a list converted to one) for this extension.
    name
        The name of the HDU.
    compressed
        `False` for no compression, `True` for ``RICE_1``, or a compression type
        from `COMPRESSION_TYPES`.
    compression_params
        Additional arguments for `~astropy.io.fits.CompImageHDU`. Floating point
        data are compressed losslessly unless ``quantize_level`` is given.
    """

    def __init__(
        self,
        data: Literal["raw", "none"] | bool | numpy.ndarray | None = None,
        header_model: HeaderModel | Iterable[HeaderItem] | None = None,
        name: str | None = None,
        compressed: bool | str = False,
        compression_params: Mapping[str, Any] | None = None,
    ) -> None:
        if data is None or data is True or (isinstance(data, str) and data == "raw"):
            self.data: str | numpy.ndarray = "raw"
        elif data is False or (isinstance(data, str) and data == "none"):
            self.data = "none"
        elif isinstance(data, numpy.ndarray):
            self.data = data
        else:
            raise FITSModelError(
                f"invalid extension data {data!r}: use 'raw', 'none' or an array."
            )
        if header_model is None:
            header_model = HeaderModel()
        elif not isinstance(header_model, HeaderModel):
            header_model = HeaderModel(header_model)
        self.header_model: HeaderModel = header_model
        self.name = name
        self.compressed: str | Literal[False] = _compression_type(compressed)
        params = dict(compression_params or {})
        unknown = set(params) - _COMPRESSION_PARAMS
        if unknown:
            raise FITSModelError(
                f"unknown compression parameters {sorted(unknown)}; valid ones are "
                f"{sorted(_COMPRESSION_PARAMS)}."
            )
        self.compression_params: Mapping[str, Any] = MappingProxyType(params)

    def __repr__(self) -> str:
        return f"<Extension (name={self.name!r}, compressed={self.compressed})>"

    def copy(self) -> Extension:
        """Returns a new extension with a copy of the header model."""
        return Extension(
            data=self.data,
            header_model=self.header_model.copy(),
            name=self.name,
            compressed=self.compressed,
            compression_params=self.compression_params,
        )

    def get_data(self, exposure: Any, primary: bool = False) -> numpy.ndarray | None:
        """Returns the data for this extension (the exposure data is not copied)."""
        if isinstance(self.data, numpy.ndarray):
            return self.data
        if self.data == "raw":
            return getattr(exposure, "data", None)
        return None

    def _compression_kwargs(self, data: numpy.ndarray | None) -> dict[str, Any]:
        """Returns the `~astropy.io.fits.CompImageHDU` arguments for ``data``.

        astropy quantizes floating point data by default (``quantize_level=16``)
        and, with ``quantize_level=0``, only GZIP_1, GZIP_2 and NOCOMPRESS are
        lossless: RICE_1, HCOMPRESS_1 and PLIO_1 silently truncate floats to
        integers. Unless the user chose a ``quantize_level``, floating point data
        are therefore stored with ``quantize_level=0`` and, if needed, GZIP_2.
        """
        assert self.compressed
        params: dict[str, Any] = {"compression_type": self.compressed}
        params.update(self.compression_params)
        if data is None or not numpy.issubdtype(data.dtype, numpy.floating):
            return params
        lossless_type = self.compressed in _LOSSLESS_FLOAT_TYPES
        if "quantize_level" not in self.compression_params:
            params["quantize_level"] = 0.0
            if not lossless_type:
                warnings.warn(
                    f"{self.compressed} cannot store floating point data losslessly; "
                    "using GZIP_2. Pass compression_params={'quantize_level': ...} "
                    "to allow lossy compression.",
                    FITSModelWarning,
                    stacklevel=3,
                )
                params["compression_type"] = "GZIP_2"
        elif params["quantize_level"] == 0 and not lossless_type:
            raise FITSModelError(
                f"quantize_level=0 with {self.compressed} would truncate floating "
                "point data to integers; use GZIP_1/GZIP_2 or quantize_level != 0."
            )
        return params

    def to_hdu(
        self,
        exposure: Any,
        primary: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> ImageHDU:
        """Evaluates the extension as an HDU.

        Parameters
        ----------
        exposure
            The exposure for which we want to evaluate the extension.
        primary
            Whether this is the primary extension (ignored if compressed).
        context
            Names used to evaluate the header model.

        Returns
        -------
        hdu
            A `~astropy.io.fits.PrimaryHDU`, `~astropy.io.fits.ImageHDU`, or
            `~astropy.io.fits.CompImageHDU` if the extension is compressed.
        """
        header = self.header_model.to_header(exposure, context=context)
        data = self.get_data(exposure, primary=primary)
        try:
            if self.compressed:
                kwargs = self._compression_kwargs(data)
                return fits.CompImageHDU(data, header=header, name=self.name, **kwargs)
            if primary:
                return fits.PrimaryHDU(data, header=header)
            return fits.ImageHDU(data, header=header, name=self.name)
        except FITSModelError:
            raise
        except (TypeError, ValueError) as err:
            raise FITSModelError(f"cannot create HDU {self.name!r}: {err}") from err


class FITSModel(list):
    """A model representing a FITS image.

    Parameters
    ----------
    extensions
        `.Extension` instances. If `None`, a single uncompressed extension with
        the raw data and the `.basic_header_model` is used.
    context
        Default names used to evaluate the header models.
    """

    def __init__(
        self,
        extensions: Iterable[Extension] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.context: dict[str, Any] = dict(context or {})
        if extensions is None:
            from camera_core.models.builtin import basic_header_model

            extensions = [Extension("raw", basic_header_model.copy(), "PRIMARY")]
        self.extend(extensions)

    def __repr__(self) -> str:
        return f"<FITSModel {list.__repr__(self)}>"

    @staticmethod
    def _check(extension: Any) -> Extension:
        if not isinstance(extension, Extension):
            raise FITSModelError(
                f"FITSModel elements must be Extension instances, not {extension!r}."
            )
        return extension

    def append(self, extension: Extension) -> None:
        """Appends an extension."""
        super().append(self._check(extension))

    def insert(self, index: Any, extension: Extension) -> None:
        """Inserts an extension before ``index``."""
        super().insert(index, self._check(extension))

    def extend(self, extensions: Iterable[Extension]) -> None:
        """Appends several extensions."""
        super().extend([self._check(ext) for ext in extensions])

    def copy(self) -> FITSModel:
        """Returns an independent copy (extensions, header models and context).

        Cards are immutable and shared. Use this before modifying a model shared
        by several exposures, such as the built-in models.
        """
        return FITSModel([ext.copy() for ext in self], context=self.context)

    def to_hdu(
        self, exposure: Any, context: Mapping[str, Any] | None = None
    ) -> fits.HDUList:
        """Returns an `~astropy.io.fits.HDUList` from an exposure.

        Parameters
        ----------
        exposure
            The exposure for which the FITS model is evaluated. HDUs added with
            ``exposure.add_hdu`` (``exposure._extra_hdus``, a list of
            ``(hdu, index)``) are inserted at ``index`` or appended if `None`.
        context
            Names used to fill the card replacement fields. Updates the default
            context.

        Returns
        -------
        hdulist
            One HDU per `.Extension`. The first extension is a
            `~astropy.io.fits.PrimaryHDU` unless it is compressed, in which case
            an empty primary HDU is prepended.
        """
        ucontext = {**self.context, **(context or {})}
        hdulist = fits.HDUList()
        for index, ext in enumerate(self):
            primary = index == 0 and not ext.compressed
            if index == 0 and ext.compressed:
                hdulist.append(fits.PrimaryHDU())
            hdulist.append(ext.to_hdu(exposure, primary=primary, context=ucontext))
        for hdu, position in getattr(exposure, "_extra_hdus", None) or ():
            if position is None:
                hdulist.append(hdu)
            else:
                hdulist.insert(position, hdu)
        return hdulist
