"""FITS checksum arithmetic: ones' complement sums and the CHECKSUM encoding.

The algorithm is the one of Seaman, Pence & Rots, "FITS Checksum Proposal"
(the FITS standard, appendix J): a 32-bit ones' complement sum of the
big-endian 32-bit words of a unit, encoded as 16 ASCII characters. Used by
`camera_core.fitsio_fast`, which re-exports the public names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["checksum_encode", "ones_complement_sum", "pieces_sum"]

_MOD = 0xFFFFFFFF  # 2**32 - 1: ones' complement arithmetic on 32-bit words

#: Punctuation the checksum encoding avoids.
_EXCLUDE = frozenset((*range(0x3A, 0x41), *range(0x5B, 0x61)))


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
