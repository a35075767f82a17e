"""A fast FITS serialiser: one pass over the data for conversion and checksums.

`astropy.io.fits.HDUList.writeto` with ``checksum=True`` converts an image to
big-endian twice (once to compute ``DATASUM``, once to write it) and, for
unsigned data, makes a full copy each time. This module writes the same bytes
in a single pass: the frame is converted in cache-sized chunks, the FITS
ones' complement ``DATASUM`` is accumulated while the chunks are written to
the file by a background thread, and the header, whose length does not depend
on the checksum values, is written last at its offset with the final
``DATASUM`` and ``CHECKSUM``. The input array is never modified or copied.

Headers are prepared with the same `~astropy.io.fits.Header` calls that
astropy makes when writing, so for supported HDU lists the file is
byte-identical to ``HDUList.writeto(checksum=True)`` made in the same second
(the checksum comments hold a timestamp). Anything else (tables, random
groups, scaled or file-backed data, unusual dtypes) returns `None` from
`prepare` and is left to astropy.

The checksum algorithm is the one of Seaman, Pence & Rots, "FITS Checksum
Proposal" (the FITS standard, appendix J): a 32-bit ones' complement sum of the
big-endian 32-bit words of a unit, encoded as 16 ASCII characters.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import datetime
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = [
    "ENABLED",
    "Prepared",
    "checksum_encode",
    "ones_complement_sum",
    "pieces_sum",
    "prepare",
    "write_fd",
    "write_stream",
]

#: Set to False to always write through astropy (for comparisons and debugging).
ENABLED = True

#: Bytes converted and written per step: small enough to stay in the CPU cache.
CHUNK = 1 << 20

#: Chunks in flight between the converting thread and the writing threads.
_RING = 4

_BLOCK = 2880
_MOD = 0xFFFFFFFF  # 2**32 - 1: ones' complement arithmetic on 32-bit words

#: dtypes FITS stores with an offset (BZERO) and the bit flip that applies it.
_PSEUDO = {
    np.dtype("uint16"): (32768, 0x8000),
    np.dtype("uint32"): (2**31, 0x80000000),
    np.dtype("uint64"): (2**63, 0x8000000000000000),
    np.dtype("int8"): (-128, 0x80),
}

#: Punctuation the checksum encoding avoids.
_EXCLUDE = frozenset((*range(0x3A, 0x41), *range(0x5B, 0x61)))


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


# --------------------------------------------------------------------------
# Checksum arithmetic


def _fold(total: int) -> int:
    """The 32-bit ones' complement representative of a non-negative sum.

    Folding the carries back in (what astropy and CFITSIO do) gives 0 only for
    an all-zero unit and otherwise the value in ``[1, 2**32 - 1]`` congruent to
    ``total`` modulo ``2**32 - 1``.
    """
    return 0 if total == 0 else (total - 1) % _MOD + 1


def _word_sum(buf: Any) -> int:
    """Plain (unfolded) sum of the big-endian 32-bit words of ``buf``.

    A trailing partial word is padded with zeros, as FITS padding would.
    """
    raw = np.frombuffer(buf, dtype=np.uint8)
    whole = raw.size - raw.size % 4
    total = int(np.add.reduce(raw[:whole].view(">u4"), dtype=np.uint64))
    if whole != raw.size:
        total += int.from_bytes(raw[whole:].tobytes().ljust(4, b"\0"), "big")
    return total


def ones_complement_sum(buf: Any, start: int = 0) -> int:
    """The FITS 32-bit ones' complement sum of ``buf``, added to ``start``.

    Matches `astropy.io.fits` (``DATASUM`` is this sum of the data unit).
    """
    return _fold(start + _word_sum(buf))


def checksum_encode(value: int) -> str:
    """Encodes a 32-bit value as the 16 ASCII characters of a ``CHECKSUM``.

    The algorithm of the FITS checksum convention: each byte is spread over
    four characters in ``0-9A-Za-z`` (avoiding punctuation) so that their sum
    restores it, and the string is rotated right by one character.
    """
    value &= _MOD
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient = byte // 4 + ord("0")
        remainder = byte % 4
        ch = [quotient + remainder, quotient, quotient, quotient]
        # Shift pairs apart until neither character is punctuation.
        for j in (0, 2):
            while ch[j] in _EXCLUDE or ch[j + 1] in _EXCLUDE:
                ch[j] += 1
                ch[j + 1] -= 1
        for j in range(4):
            asc[4 * j + i] = ch[j]
    return bytes(asc[(i + 15) % 16] for i in range(16)).decode("ascii")


# --------------------------------------------------------------------------
# Data units


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


# --------------------------------------------------------------------------
# Preparing headers


def _supported_image(hdu: Any) -> bool:
    if type(hdu) not in (fits.PrimaryHDU, fits.ImageHDU):
        return False
    if hdu.fileinfo() is not None:
        return False  # file-backed data may be scaled or lazily loaded
    data = hdu.data
    if data is None:
        return True
    if type(data) is not np.ndarray or data.dtype.kind not in "uif":
        return False
    if data.dtype.kind == "f" and data.dtype.itemsize not in (4, 8):
        return False
    if data.dtype.itemsize not in (1, 2, 4, 8):
        return False
    # Scaled data (BSCALE/BZERO given by the user) is left to astropy.
    header = hdu.header
    base = _native(data.dtype)
    if base in _PSEUDO:
        zero = _PSEUDO[base][0]
        return header.get("BSCALE", 1) == 1 and header.get("BZERO", zero) == zero
    return "BSCALE" not in header and "BZERO" not in header


def _pseudo_keywords(header: fits.Header, zero: int) -> None:
    # As astropy's ImageHDU._update_pseudo_int_scale_keywords.
    if "TFIELDS" in header:
        header.set("BSCALE", 1, after="TFIELDS")
    elif "GCOUNT" in header:
        header.set("BSCALE", 1, after="GCOUNT")
    else:
        header.set("BSCALE", 1)
    header.set("BZERO", zero, after="BSCALE")


def _timestamp() -> str:
    return datetime.datetime.now().isoformat()[:19]


def prepare(
    hdulist: fits.HDUList,
    checksum: bool = True,
    compressor: Callable[[Any], tuple[fits.Header, Any, int] | None] | None = None,
) -> Prepared | None:
    """Prepares the headers of ``hdulist`` for writing, or `None` if unsupported.

    Like `~astropy.io.fits.HDUList.writeto`, this verifies the list, updates
    ``EXTEND``, ``BITPIX``, ``NAXISn`` and ``BSCALE``/``BZERO`` for unsigned
    data in the HDU headers, and adds ``CHECKSUM``/``DATASUM`` placeholders
    when ``checksum`` is true. The checksum values are set when written.

    Parameters
    ----------
    hdulist
        The HDUs to write.
    checksum
        Whether to add ``DATASUM`` and ``CHECKSUM`` to every HDU.
    compressor
        Called with each `~astropy.io.fits.CompImageHDU`; returns the binary
        table header, its data unit bytes and the number of blank cards to
        append after the checksum cards, or `None` to leave the whole list to
        astropy. Without it compressed HDUs are left to astropy.
    """
    if not ENABLED or len(hdulist) == 0 or type(hdulist[0]) is not fits.PrimaryHDU:
        return None
    if hdulist[0].header.get("SIMPLE") is not True:
        return None
    for hdu in hdulist:
        if isinstance(hdu, fits.CompImageHDU):
            if compressor is None or hdu.fileinfo() is not None:
                return None
        elif not _supported_image(hdu):
            return None
    hdulist.verify(option="exception")
    hdulist.update_extend()
    when = _timestamp()
    units: list[_Unit] = []
    for hdu in hdulist:
        if isinstance(hdu, fits.CompImageHDU):
            assert compressor is not None
            made = compressor(hdu)
            if made is None:
                return None
            header, pieces, extra = made
            payload = [memoryview(piece).cast("B") for piece in pieces]
            unit = _Unit(header, payload=payload)
        else:
            extra = 0
            hdu.update_header()
            data = hdu.data
            header = hdu.header
            if data is not None:
                base = _native(data.dtype)
                if base in _PSEUDO:
                    _pseudo_keywords(header, _PSEUDO[base][0])
            image = None if data is None or data.size == 0 else _ImageData(data)
            unit = _Unit(header, image=image)
        unit.checksum = checksum
        if checksum:
            unit.when_data = f"data unit checksum updated {when}"
            unit.when_hdu = f"HDU checksum updated {when}"
            unit.header["DATASUM"] = ("0", unit.when_data)
            unit.header.set("CHECKSUM", "0" * 16, unit.when_hdu, before="DATASUM")
        for _ in range(extra):
            unit.header.append()
        units.append(unit)
    offset = 0
    for unit in units:
        unit.offset = offset
        unit.header_size = len(unit.header.tostring())
        offset = unit.data_offset + unit.padded
    return Prepared(units)


# --------------------------------------------------------------------------
# Writing


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    """``sync_file_range(SYNC_FILE_RANGE_WRITE)``: starts writeback early.

    Writeback then overlaps with converting the next chunks, so the final
    fsync has less left to wait for. Linux only; a no-op elsewhere.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int

    def kick(fd: int, offset: int, nbytes: int) -> None:
        func(fd, offset, nbytes, 2)  # SYNC_FILE_RANGE_WRITE; errors are harmless

    return kick


_kick = _load_sync_file_range()


def _pwrite_all(fd: int, buf: Any, offset: int, kick: bool) -> None:
    view = memoryview(buf).cast("B")
    start, size = offset, view.nbytes
    while view.nbytes:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
    if kick and _kick is not None:
        _kick(fd, start, size)


class _Ring:
    """Reusable chunk buffers, written in order by a thread of this file's own.

    One writer per file measured fastest: concurrent ``pwrite`` calls to one
    file only contend for its lock, and a writer shared between files would
    make a slow disk hold up the others.
    """

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.buffers = [np.empty(size, np.uint8) for _ in range(_RING)]
        self.pending: list[Future | None] = [None] * _RING
        self.index = 0
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="camactor-fits-io")

    def next(self) -> np.ndarray:
        """The next free buffer (waits for its previous write)."""
        future = self.pending[self.index]
        if future is not None:
            self.pending[self.index] = None
            future.result()
        return self.buffers[self.index]

    def submit(self, nbytes: int, offset: int) -> None:
        buf = self.buffers[self.index][:nbytes]
        self.pending[self.index] = self.writer.submit(
            _pwrite_all, self.fd, buf, offset, True
        )
        self.index = (self.index + 1) % _RING

    def drain(self) -> None:
        """Waits for every write; raises the first error."""
        error: BaseException | None = None
        for i, future in enumerate(self.pending):
            if future is None:
                continue
            self.pending[i] = None
            try:
                future.result()
            except BaseException as err:  # keep waiting for the others
                error = error or err
        self.writer.shutdown(wait=True)
        if error is not None:
            raise error


def _image_pieces(
    unit: _Unit, ring_next: Callable[[], np.ndarray], scratch: np.ndarray
) -> Iterator[tuple[np.ndarray, int]]:
    """Yields ``(buffer, nbytes)`` chunks of an image data unit, padded.

    ``unit.datasum`` is set when the generator is exhausted.
    """
    image = unit.image
    assert image is not None
    big, native = 0, 0
    chunks = list(image.chunks(CHUNK))
    for index, (item, count) in enumerate(chunks):
        buf = ring_next()
        nbytes = count * image.itemsize
        b, n = image.encode(item, count, buf, scratch)
        big += b
        native += n
        if index == len(chunks) - 1:
            pad = unit.padded - unit.nbytes
            buf[nbytes : nbytes + pad] = 0
            nbytes += pad
        yield buf, nbytes
    # native words are the big-endian ones rotated by 16 bits.
    unit.datasum = _fold(big + (_fold(native) << 16))


def pieces_sum(pieces: list[Any]) -> int:
    """The ones' complement sum of consecutive byte strings, without joining.

    Word sums are linear in the bytes, and moving a byte string ``p`` bytes
    further along the 32-bit word grid multiplies its sum by ``2**-8p``,
    i.e. by ``2**(32 - 8p)`` modulo ``2**32 - 1``. Each piece is summed where
    it lies (GIL released in numpy), rotated into place and added up.
    """
    total = 0
    offset = 0
    for piece in pieces:
        words = _word_sum(piece)
        total += words << ((32 - 8 * (offset % 4)) % 32)
        offset += memoryview(piece).nbytes
    return _fold(total)


def _payload_pieces(unit: _Unit) -> Iterator[memoryview]:
    payload = unit.payload
    assert payload is not None
    unit.datasum = pieces_sum(payload)
    yield from payload
    pad = unit.padded - unit.nbytes
    if pad:
        yield memoryview(bytes(pad))


def write_fd(prepared: Prepared, fd: int) -> None:
    """Writes prepared HDUs to a new, seekable file descriptor (blocking).

    Data units are converted in chunks that a background thread writes with
    ``pwrite`` (and hands to the kernel for writeback) while the next chunk is
    converted; the headers are written last. The caller fsyncs.
    """
    ring = _Ring(fd, CHUNK + _BLOCK)
    scratch = np.empty(CHUNK + _BLOCK, np.uint8)
    try:
        for unit in prepared.units:
            offset = unit.data_offset
            if unit.image is not None:
                for _, nbytes in _image_pieces(unit, ring.next, scratch):
                    ring.submit(nbytes, offset)
                    offset += nbytes
            elif unit.payload is not None:
                for piece in _payload_pieces(unit):
                    _pwrite_all(fd, piece, offset, True)
                    offset += piece.nbytes
    except BaseException:
        with contextlib.suppress(BaseException):
            ring.drain()  # no write may outlive the descriptor
        raise
    ring.drain()
    for unit in prepared.units:
        _pwrite_all(fd, unit.finish(), unit.offset, False)


def write_stream(prepared: Prepared, fileobj: Any) -> None:
    """Writes prepared HDUs to a sequential stream, e.g. a gzip file (blocking).

    A stream cannot go back to write a header, so each image is converted
    twice: once for its ``DATASUM``, once to write it (as astropy does).
    """
    scratch = np.empty(CHUNK + _BLOCK, np.uint8)
    buf = np.empty(CHUNK + _BLOCK, np.uint8)
    for unit in prepared.units:
        if unit.image is not None:
            for _ in _image_pieces(unit, lambda: buf, scratch):
                pass
        elif unit.payload is not None:
            unit.datasum = pieces_sum(unit.payload)
        fileobj.write(unit.finish())
        if unit.image is not None:
            for chunk, nbytes in _image_pieces(unit, lambda: buf, scratch):
                fileobj.write(memoryview(chunk[:nbytes]))
        elif unit.payload is not None:
            for piece in _payload_pieces(unit):
                fileobj.write(piece)
