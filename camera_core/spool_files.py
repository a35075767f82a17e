"""Spool files: the spool lock, checksum verification, recovered names.

Helpers of `camera_core.spool`. Everything here blocks and runs in an
executor.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import filecmp
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astropy.io import fits

__all__ = [
    "LOCK_TIMEOUT",
    "SpoolBusyError",
    "dir_lock",
    "header_cards",
    "recovered_names",
    "same_file",
    "verify_file",
]

#: How long (s) spooling or `recover` waits for another holder of the spool lock.
LOCK_TIMEOUT = 3.0

#: How often (s) a busy spool lock is tried again.
_LOCK_POLL = 0.05

#: How many ``<stem>-recovered-<N><suffix>`` names `recover` tries.
MAX_ALTERNATIVES = 999


class SpoolBusyError(BlockingIOError):
    """Another process (a stuck ``camactor recover``, say) holds the spool lock."""


@contextlib.contextmanager
def dir_lock(
    directory: Path, exclusive: bool, timeout: float = LOCK_TIMEOUT
) -> Iterator[None]:
    """Holds a `flock` on a directory (shared or exclusive).

    Runs in an executor thread: a lock held elsewhere is tried again every
    ``_LOCK_POLL`` seconds for at most ``timeout`` seconds.

    Raises
    ------
    SpoolBusyError
        If the lock stays held by someone else for ``timeout`` seconds.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SpoolBusyError(
                        errno.EWOULDBLOCK,
                        f"the spool {directory} is busy: another process (a "
                        f"'camactor recover'?) has held its lock for {timeout:g} s; "
                        "let it finish (or stop it) and try again",
                    ) from None
                time.sleep(_LOCK_POLL)  # a lock held by another process: poll
        yield
    finally:
        os.close(fd)  # releases the lock


def header_cards(hdulist: fits.HDUList) -> list[list[Any]]:
    """The cards of the image header as ``[keyword, value, comment]`` lists."""
    index = 1 if isinstance(hdulist[0], fits.PrimaryHDU) and len(hdulist) > 1 else 0
    if hdulist[0].header.get("NAXIS", 0) > 0:
        index = 0
    cards = []
    for card in hdulist[index].header.cards:
        value = card.value
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            value = str(value)
        cards.append([card.keyword, value, card.comment])
    return cards


def verify_file(path: Path, datasum: str | None = None) -> None:
    """Checks every HDU's ``DATASUM`` and ``CHECKSUM`` (blocking, thread-safe).

    Parameters
    ----------
    path
        A FITS file, possibly gzip-compressed.
    datasum
        If given, the ``DATASUM`` the first HDU with data must have.

    Raises
    ------
    ValueError
        If a sum does not match.
    OSError
        If the file cannot be read.
    """
    with fits.open(path, disable_image_compression=True, lazy_load_hdus=False) as hdul:
        first: str | None = None
        for index, hdu in enumerate(hdul):
            if hdu.verify_datasum() == 0 or hdu.verify_checksum() == 0:
                raise ValueError(f"HDU {index} of {path} fails its checksum")
            has_data = hdu.header.get("NAXIS", 0) > 0 or "ZNAXIS" in hdu.header
            if first is None and has_data:
                first = str(hdu.header.get("DATASUM"))
        if datasum is not None and first is not None and first != str(datasum):
            raise ValueError(f"{path} has DATASUM {first}, its sidecar says {datasum}")


def same_file(one: Path, other: Path) -> bool:
    try:
        return filecmp.cmp(one, other, shallow=False)
    except OSError:
        return False


def recovered_names(target: Path) -> Iterator[Path]:
    """The target, then ``<stem>-recovered-<N><suffix>`` next to it."""
    yield target
    name = target.name
    suffixes = target.suffixes[-2:] if target.suffix in (".gz", ".fz") else []
    suffix = "".join(suffixes) or target.suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    for number in range(1, MAX_ALTERNATIVES + 1):
        yield target.with_name(f"{stem}-recovered-{number}{suffix}")
