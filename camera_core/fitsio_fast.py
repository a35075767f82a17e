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

The checksum arithmetic is in `camera_core.fits_checksum` and the data and
header units in `camera_core.fits_units`; the names other modules use are
re-exported here.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from astropy.io import fits

from .fits_checksum import _fold, checksum_encode, ones_complement_sum, pieces_sum
from .fits_units import _BLOCK, _PSEUDO, Prepared, _ImageData, _native, _Unit

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
