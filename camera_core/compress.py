"""Tile compression of `~astropy.io.fits.CompImageHDU` on every core.

astropy compresses the tiles of an image one after another in one thread, and
then spends about as long again converting the heap of the binary table it
built when writing it. Its tile codecs release the GIL while compressing, so
here the tiles are compressed by a pool of threads, one per core, with the
same codecs and settings, and the binary table (descriptors and heap) is
assembled directly as bytes. The header is the one astropy builds for the
table, completed with the values its table writer would set, so the output is
byte-identical to ``CompImageHDU.writeto`` for the cases handled here (see
tests/test_fast_write.py). Anything else, including quantised floating point
data and tables with more than the compressed-data column, returns `None` and
is written by astropy.

This uses astropy's tile compression helpers and the method that builds the
table header, which are not public API; if they disappear the fast path turns
itself off (`available`), and tests/test_fast_write.py compares the bytes with
astropy's so that a change in them is caught.

The compression threads run at a lower priority (`NICE`) than the event loop.
"""

from __future__ import annotations

import gzip
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from astropy.io import fits

try:  # astropy >= 6.1 layout
    from astropy.io.fits.hdu.compressed._tiled_compression import (
        _check_compressed_header,
        _compress_tile,
        _header_to_settings,
        _update_tile_settings,
    )
    from astropy.io.fits.hdu.compressed.utils import (
        _data_shape,
        _iter_array_tiles,
        _tile_shape,
    )
except ImportError:  # pragma: no cover - depends on the astropy version
    available = False
else:
    available = True

try:  # what astropy's Rice1 codec calls once it holds the tile bytes
    from astropy.io.fits.hdu.compressed._compression import compress_rice_1_c
except ImportError:  # pragma: no cover - depends on the astropy version
    compress_rice_1_c = None

__all__ = ["available", "compress_hdu", "workers"]

#: Compression types compressed in parallel here.
TYPES = frozenset({"RICE_1", "GZIP_1", "GZIP_2", "HCOMPRESS_1"})

#: Tiles per task handed to a worker: small enough to balance the cores.
BATCH = 64

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def workers() -> int:
    """Threads used for compression: one per core."""
    return max(1, os.cpu_count() or 1)


#: Niceness of the compression threads (Linux). They keep both cores busy, so
#: at the event loop's priority a loop waking up every few milliseconds could
#: wait a whole time slice for a core: bench_stall.py measured worst stalls of
#: 20-30 ms at nice 0 (all of it waiting for a CPU), 8-10 ms at nice 10. Only
#: matters when the cores are contended; 0 turns it off.
NICE = int(os.environ.get("CAMACTOR_TILE_NICE", "10"))


def parallel(ctype: str) -> int:
    """How many tile batches of ``ctype`` are compressed at the same time.

    RICE_1 uses every core. The gzip codecs leave one core to the event loop:
    with every core compressing gzip tiles, bench_stall.py measured event-loop
    stalls of about 20 ms (GIL hand-offs between the compressing threads and
    the loop), against about 5 ms with one core left free.
    """
    if ctype == "RICE_1":
        return workers()
    return max(1, workers() - 1)


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed
        pass


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                workers(),
                thread_name_prefix="camactor-tiles",
                initializer=_lower_priority if NICE > 0 else None,
            )
        return _pool


def _stored(block: np.ndarray) -> np.ndarray:
    """Tile values as stored: unsigned (and int8) data shifted by BZERO.

    Equals astropy's per-tile conversion, e.g. ``(x.astype(int32) - 32768)
    .astype(int16)`` for uint16, which is a flip of the sign bit.
    """
    kind, size = block.dtype.kind, block.dtype.itemsize
    native = block.dtype.newbyteorder("=")
    if kind == "u" and size in (2, 4):
        flip = native.type(1 << (8 * size - 1))
        return np.bitwise_xor(block, flip, dtype=native).view(f"i{size}")
    if kind == "i" and size == 1:
        return np.bitwise_xor(block, np.int8(-128)).view(np.uint8)
    return block


def _compress_batch(
    data: np.ndarray,
    tiles: list[tuple[slice, ...]],
    rows: tuple[int, int] | None,
    ctype: str,
    base: dict[str, Any],
) -> tuple[bytes, list[int]]:
    """Compresses a batch of tiles: their bytes, joined, and their lengths.

    Joining here, in small pieces, keeps the GIL free: one join of the whole
    heap would hold it for the copy of tens of megabytes.
    """
    pieces = _compress_tiles(data, tiles, rows, ctype, base)
    return b"".join(pieces), [len(piece) for piece in pieces]


def _compress_tiles(
    data: np.ndarray,
    tiles: list[tuple[slice, ...]],
    rows: tuple[int, int] | None,
    ctype: str,
    base: dict[str, Any],
) -> list[bytes]:
    settings = dict(base)
    out = []
    if rows is not None:
        # Whole-row tiles: convert the rows of the batch in one step.
        block = _stored(data[rows[0] : rows[1]])
        settings = _update_tile_settings(settings, ctype, block.shape[1:])
        if (
            ctype == "RICE_1"
            and compress_rice_1_c is not None
            and block.dtype.kind == "i"
            and block.dtype.itemsize == settings.get("bytepix")
        ):
            # Rice1.encode without its per-tile copies; the same bytes. Its
            # Python overhead is what the threads would otherwise queue on.
            size, bytepix = settings["blocksize"], settings["bytepix"]
            return [compress_rice_1_c(row, size, bytepix) for row in block]
        if ctype in ("GZIP_1", "GZIP_2"):
            return _gzip_rows(block, shuffle=ctype == "GZIP_2")
        for index in range(block.shape[0]):
            out.append(_compress_tile(block[index], algorithm=ctype, **settings))
        return out
    for tile_slices in tiles:
        tile = _stored(data[tile_slices])
        settings = _update_tile_settings(settings, ctype, tile.shape)
        out.append(_compress_tile(tile, algorithm=ctype, **settings))
    return out


def _gzip_rows(block: np.ndarray, shuffle: bool) -> list[bytes]:
    """GZIP_1/GZIP_2 of whole-row tiles, byte-swapped and shuffled per batch.

    The same bytes as astropy's Gzip1/Gzip2 codecs (``gzip.compress`` of the
    big-endian tile, its bytes grouped by significance for GZIP_2), but the
    conversion is one numpy call per batch instead of per-tile copies made
    while holding the GIL.
    """
    big = block.astype(block.dtype.newbyteorder(">"), copy=False)
    nrows, size = big.shape[0], big.dtype.itemsize
    raw = big.view(np.uint8).reshape(nrows, -1)
    if shuffle and size > 1:
        raw = raw.reshape(nrows, -1, size).transpose(0, 2, 1)
        raw = np.ascontiguousarray(raw).reshape(nrows, -1)
    return [gzip.compress(memoryview(np.ascontiguousarray(row))) for row in raw]


def _trailing_blanks(header: fits.Header) -> int:
    cards = header.cards
    for index in range(1, len(cards)):
        if not cards[-index].is_blank:
            return index - 1
    return 0


def compress_hdu(
    hdu: fits.CompImageHDU,
) -> tuple[fits.Header, list[bytes], int] | None:
    """Compresses ``hdu`` on every core.

    Returns
    -------
    header, data, blanks
        The binary table header (without checksums), its data unit as a list
        of byte strings (descriptors, then the heap, without padding) and how
        many blank cards to
        append once the checksum cards are in, or `None` if this HDU is better
        left to astropy.
    """
    if not available or hdu.compression_type not in TYPES:
        return None
    if getattr(hdu, "_bintable", None) is not None or getattr(
        hdu, "_scale_back", False
    ):
        return None
    data = hdu.data
    if type(data) is not np.ndarray or data.size == 0:
        return None
    if data.dtype.kind not in "iuf" or data.dtype.itemsize > 8:
        return None
    if data.dtype.kind in "iu" and data.dtype.itemsize == 8:
        return None  # astropy narrows 64-bit integers with a warning
    if data.dtype.kind == "f" and data.dtype.itemsize not in (4, 8):
        return None
    make_table = getattr(hdu, "_get_bintable_without_data", None)
    if make_table is None:  # pragma: no cover - depends on the astropy version
        return None
    table = make_table()
    columns = table.columns
    if columns.names != ["COMPRESSED_DATA"] or not columns.formats[0].startswith("1P"):
        return None  # quantised floats (ZSCALE, ZZERO) or 64-bit descriptors
    header = table.header
    _check_compressed_header(header)
    tile_shape = _tile_shape(header)
    data_shape = _data_shape(header)
    ctype = header["ZCMPTYPE"]
    base = _header_to_settings(header)
    if not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)

    whole_rows = data.ndim == 2 and tuple(tile_shape) == (1, data.shape[1])
    if whole_rows:
        tiles = []
        count = data.shape[0]
    else:
        tiles = [tile for _, tile in _iter_array_tiles(data_shape, tile_shape)]
        count = len(tiles)
    pool = _executor()
    futures = []
    slots = threading.BoundedSemaphore(parallel(ctype))
    for start in range(0, count, BATCH):
        stop = min(start + BATCH, count)
        rows = (start, stop) if whole_rows else None
        batch = [] if whole_rows else tiles[start:stop]
        slots.acquire()  # in the writer's executor thread, never on the loop
        future = pool.submit(_compress_batch, data, batch, rows, ctype, base)
        future.add_done_callback(lambda _: slots.release())
        futures.append(future)
    blobs = []
    sizes: list[int] = []
    for future in futures:
        blob, batch_sizes = future.result()
        blobs.append(blob)
        sizes.extend(batch_sizes)

    # The descriptors (length, heap offset) as astropy's compress_image_data.
    descriptors = np.zeros(len(sizes), dtype=columns.dtype.newbyteorder(">"))
    lengths = np.asarray(sizes, dtype=np.int64)
    cells = descriptors["COMPRESSED_DATA"]
    cells[:, 0] = lengths
    cells[1:, 1] = np.cumsum(lengths[:-1])
    heap_size = int(lengths.sum())
    if heap_size >= 2**31:
        return None
    payload = [descriptors.tobytes(), *blobs]

    # What astropy's binary table writer sets once it holds the heap.
    header["PCOUNT"] = heap_size
    fmt = columns.formats[0]
    header["TTYPE1"] = (columns.names[0], "")
    header["TFORM1"] = (f"{fmt}({int(lengths.max())})", "")
    if header["NAXIS2"] != len(sizes):
        return None
    # astropy pads the table header with blank cards up to the image header's
    # count after adding the checksum cards; the caller does the same.
    blanks = max(0, _trailing_blanks(hdu.header) - _trailing_blanks(header))
    return header, payload, blanks
