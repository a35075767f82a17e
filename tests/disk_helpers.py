"""Real disk faults for tests: small tmpfs mounts that turn read-only or fill up.

Root ignores file permissions, so a read-only directory or a full disk is made
for real with a tmpfs mounted on a test directory (``mount -o remount,ro``,
``remount,size=``). Mounting needs root (as on CI); without it these helpers
fail loudly with the reason instead of skipping.

The methods block (they run ``mount``); call them from a writer fault hook
(which runs in the writer's worker thread) or through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from astropy.io import fits

from camera_core.atomic import write_atomic


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}. "
            "The disk fault tests mount tmpfs and must run as root (as CI does)."
        )


class Tmpfs:
    """A tmpfs mounted on ``path``: make it read-only, full, or bigger."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size
        self._filler = 0

    def mount(self) -> Tmpfs:
        if os.geteuid() != 0:
            raise RuntimeError(
                f"cannot mount a tmpfs on {self.path}: not root (euid "
                f"{os.geteuid()}); the disk fault tests need root, as on CI."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.path))
        return self

    def umount(self) -> None:
        done = subprocess.run(["umount", str(self.path)], capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def readonly(self, readonly: bool = True) -> None:
        """Remounts read-only (or read-write again)."""
        _run("mount", "-o", f"remount,{'ro' if readonly else 'rw'}", str(self.path))

    def resize(self, size: str) -> None:
        """Changes the size of the filesystem (e.g. to end an ENOSPC)."""
        _run("mount", "-o", f"remount,size={size}", str(self.path))

    def fill(self) -> int:
        """Fills the filesystem with one-page files until ENOSPC; returns them."""
        page = b"\0" * 4096
        count = 0
        while True:
            path = self.path / f".filler-{self._filler}"
            try:
                with open(path, "wb") as raw:
                    raw.write(page)
            except OSError as err:
                path.unlink(missing_ok=True)
                if err.errno != errno.ENOSPC:
                    raise
                return count
            self._filler += 1
            count += 1

    def free_pages(self, pages: int | None = None) -> None:
        """Removes ``pages`` filler pages (all of them if `None`)."""
        while self._filler > 0 and (pages is None or pages > 0):
            self._filler -= 1
            (self.path / f".filler-{self._filler}").unlink()
            pages = None if pages is None else pages - 1


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "4m") -> Iterator[Tmpfs]:
    """Mounts a tmpfs for the duration of the block (always unmounted)."""
    mount = Tmpfs(path, size).mount()
    try:
        yield mount
    finally:
        mount.umount()


def verified(path: Path) -> fits.HDUList:
    """Opens a FITS file checking every HDU's DATASUM and CHECKSUM (strictly)."""
    with fits.open(path, disable_image_compression=True) as hdul:
        for index, hdu in enumerate(hdul):
            assert "CHECKSUM" in hdu.header, f"{path}[{index}] has no CHECKSUM"
            assert hdu.verify_datasum() == 1, f"{path}[{index}] bad DATASUM"
            assert hdu.verify_checksum() == 1, f"{path}[{index}] bad CHECKSUM"
    return fits.open(path)


def _without_sum_cards(raw: bytes) -> bytes:
    """FITS bytes with the CHECKSUM/DATASUM records (dated comments) blanked."""
    out = bytearray(raw)
    for start in range(0, len(raw), 80):
        if raw[start : start + 8] in (b"CHECKSUM", b"DATASUM "):
            out[start : start + 80] = b" " * 80
    return bytes(out)


def assert_as_written(path: Path, hdulist: fits.HDUList, tmp: Path) -> None:
    """``path`` holds what a clean write of ``hdulist`` gives, with valid sums.

    Byte for byte (every header card, padding and pixel), except the dates in
    the comments of the CHECKSUM and DATASUM cards; the sums are verified.
    """
    reference = tmp / "reference" / path.name
    write_atomic(hdulist, reference, overwrite=True)
    got, want = path.read_bytes(), reference.read_bytes()
    assert len(got) == len(want), (path, len(got), len(want))
    assert _without_sum_cards(got) == _without_sum_cards(want), path
    verified(path).close()
