"""The units of a FITS file being written by `camera_core.fitsio_fast`.

`_ImageData` converts an image to its big-endian data unit in chunks while
summing its words; `_Unit` holds one HDU's header and data unit and sets the
final ``DATASUM`` and ``CHECKSUM``; `Prepared` is the list of units that
`~camera_core.fitsio_fast.prepare` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
from astropy.io import fits

from .fits_checksum import _word_sum, checksum_encode, ones_complement_sum

_BLOCK = 2880

#: dtypes FITS stores with an offset (BZERO) and the bit flip that applies it.
_PSEUDO = {
    np.dtype("uint16"): (32768, 0x8000),
    np.dtype("uint32"): (2**31, 0x80000000),
    np.dtype("uint64"): (2**63, 0x8000000000000000),
    np.dtype("int8"): (-128, 0x80),
}


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


class _ImageData:
    """Converts an image to its FITS data unit in chunks, summing as it goes."""

    def __init__(self, array: np.ndarray) -> None:
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)  # FITS order; rare for frames
        flat = array.reshape(-1)
        dtype = flat.dtype
        self.itemsize = dtype.itemsize
        order = dtype.byteorder if dtype.byteorder in "<>" else "="
        unsigned = np.dtype(f"u{self.itemsize}").newbyteorder(order)
        self.values = flat.view(unsigned)  # bit patterns, original byte order
        self.native = unsigned.isnative
        self.flip = _PSEUDO.get(_native(dtype), (0, 0))[1]
        self.nbytes = flat.nbytes
        self.out_dtype = np.dtype(f">u{self.itemsize}")
        self.scratch_dtype = np.dtype(f"u{self.itemsize}")

    def encode(
        self, item: int, count: int, out: np.ndarray, scratch: np.ndarray
    ) -> tuple[int, int]:
        """Writes ``count`` items from ``item`` as big-endian bytes into ``out``.

        Returns two unfolded word sums, ``(big_endian, native16)``: the sum of
        the big-endian words of ``out`` and, for 2-byte data, the sum of the
        native little-endian words made by pairs of values, which equals the
        big-endian sum rotated by 16 bits (i.e. times 2**16 modulo 2**32 - 1)
        and saves a byte-swapping pass.
        """
        src = self.values[item : item + count]
        nbytes = count * self.itemsize
        if self.flip or not self.native:
            vals = scratch[:nbytes].view(self.scratch_dtype)
            if self.flip:
                np.bitwise_xor(src, self.scratch_dtype.type(self.flip), out=vals)
            else:
                np.copyto(vals, src)
        else:
            vals = src
        np.copyto(out[:nbytes].view(self.out_dtype), vals)
        if self.itemsize == 2 and np.little_endian:
            pairs = count - count % 2
            native = int(np.add.reduce(vals[:pairs].view(np.uint32), dtype=np.uint64))
            tail = _word_sum(out[pairs * 2 : nbytes]) if pairs != count else 0
            return tail, native
        return _word_sum(out[:nbytes]), 0

    def chunks(self, chunk_bytes: int) -> Iterator[tuple[int, int]]:
        """``(first item, count)`` per chunk; chunks start on 4-byte words."""
        per = max(1, chunk_bytes // self.itemsize)
        per -= per % 4
        total = self.values.size
        for item in range(0, total, per):
            yield item, min(per, total - item)


@dataclasses.dataclass
class _Unit:
    """One HDU to write: its header and its data unit."""

    header: fits.Header
    image: _ImageData | None = None
    payload: list[memoryview] | None = None
    checksum: bool = True
    offset: int = 0
    header_size: int = 0
    datasum: int = 0
    when_data: str = ""
    when_hdu: str = ""

    @property
    def nbytes(self) -> int:
        if self.image is not None:
            return self.image.nbytes
        return 0 if self.payload is None else sum(p.nbytes for p in self.payload)

    @property
    def padded(self) -> int:
        return -(-self.nbytes // _BLOCK) * _BLOCK

    @property
    def data_offset(self) -> int:
        return self.offset + self.header_size

    def finish(self) -> bytes:
        """The final header bytes, with ``DATASUM`` and ``CHECKSUM`` set."""
        if self.checksum:
            # The calls, values and comments astropy's add_checksum makes.
            self.header["DATASUM"] = (str(self.datasum), self.when_data)
            self.header.set("CHECKSUM", "0" * 16, self.when_hdu, before="DATASUM")
            text = self.header.tostring().encode("ascii")
            total = ones_complement_sum(text, self.datasum)
            self.header["CHECKSUM"] = checksum_encode(~total)
        text = self.header.tostring().encode("ascii")
        if len(text) != self.header_size:
            raise RuntimeError("FITS header changed length while being written")
        return text


@dataclasses.dataclass
class Prepared:
    """HDUs ready to be written by `write_fd` or `write_stream`."""

    units: list[_Unit]

    @property
    def size(self) -> int:
        """Bytes in the file."""
        last = self.units[-1]
        return last.data_offset + last.padded

    def sums(self) -> tuple[str | None, str | None]:
        """``(DATASUM, CHECKSUM)`` of the first HDU with data, once written."""
        for unit in self.units:
            if unit.nbytes:
                break
        else:
            unit = self.units[0]
        return unit.header.get("DATASUM"), unit.header.get("CHECKSUM")
