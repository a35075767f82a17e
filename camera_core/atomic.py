"""Atomic file creation: a fsynced temporary file linked into place.

A file is first written to a temporary file in its target directory, fsynced,
and then linked (or, when overwriting, renamed) into place, so a reader never
sees a partial file and an existing file is never replaced unless asked.

Everything here blocks and is meant to run in an executor.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from astropy.io import fits

from . import compress, fitsio_fast

__all__ = ["OutsideRootError", "atomic_stream", "atomic_stream_free", "write_atomic"]


class OutsideRootError(PermissionError):
    """The target's directory resolves outside the directories allowed."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Moves a finished temporary file into place, atomically."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the target exists: never clobbers
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # Filesystems without hard links: check, then rename.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from err
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _directory_fd(directory: Path, roots: Sequence[Path] | None) -> int:
    """An open descriptor of ``directory``, checked to lie inside ``roots``.

    Everything after this is done relative to the descriptor, so a directory
    swapped for a symbolic link later cannot redirect the file.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if roots is None:
        return fd
    try:
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # no /proc: the path as it resolves now
        real = directory.resolve()
    if not any(real.is_relative_to(Path(root).resolve()) for root in roots):
        os.close(fd)
        allowed = " or ".join(str(root) for root in roots)
        raise OutsideRootError(
            errno.EACCES,
            f"{directory} now resolves to {real}, outside {allowed} (a symbolic "
            "link changed after the name was checked); not written there",
            str(directory),
        )
    return fd


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _publish_at(dir_fd: int, tmp: str, name: str, overwrite: bool) -> None:
    """Moves a finished temporary file into place in a directory, atomically."""
    at = {"src_dir_fd": dir_fd, "dst_dir_fd": dir_fd}
    if overwrite:
        os.replace(tmp, name, **at)
        return
    try:
        os.link(tmp, name, follow_symlinks=False, **at)  # never clobbers
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # Filesystems without hard links: check, then rename.
        if _exists(name, dir_fd):
            raise FileExistsError(errno.EEXIST, "File exists", name) from err
        os.replace(tmp, name, **at)
        return
    os.unlink(tmp, dir_fd=dir_fd)


def atomic_stream(
    target: Path,
    overwrite: bool,
    write: Callable[[Any], None],
    roots: Sequence[Path] | None = None,
) -> None:
    """Creates ``target`` through a fsynced temporary file in its directory.

    Parameters
    ----------
    target
        The file to create. Missing parent directories are created.
    overwrite
        Whether an existing ``target`` may be replaced.
    write
        Called with the open binary temporary file; writes the content.
    roots
        If given, the directory of ``target`` must (still) resolve inside one
        of these, checked on the open directory the file is created in.

    Raises
    ------
    FileExistsError
        If ``target`` exists and ``overwrite`` is False.
    OutsideRootError
        If the directory resolves outside ``roots``.
    OSError
        If the directory or the file cannot be written; no partial file is
        left behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    dir_fd = _directory_fd(target.parent, roots)
    try:
        if not overwrite and _exists(target.name, dir_fd):
            raise FileExistsError(errno.EEXIST, "File exists", str(target))
        umask = os.umask(0)
        os.umask(umask)
        tmp = f".{target.name}.{secrets.token_hex(6)}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o666 & ~umask, dir_fd=dir_fd)
        try:
            os.fchmod(fd, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as raw:
                write(raw)
                raw.flush()
                os.fsync(raw.fileno())
            _publish_at(dir_fd, tmp, target.name, overwrite)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_stream_free(
    names: Iterable[Path],
    write: Callable[[Any], None],
    same: Callable[[Path], bool],
) -> Path:
    """Creates the first free one of ``names``, never replacing a file.

    The content is written once to a fsynced temporary file in the directory
    of the first name, then hard-linked (no-overwrite) to each name in turn
    until one is free; a name whose file ``same`` accepts (identical content)
    is returned instead. All names must be in the same directory.

    Parameters
    ----------
    names
        Candidate files, first choice first.
    write
        Called with the open binary temporary file; writes the content.
    same
        Whether an existing file already holds the content.

    Returns
    -------
    path
        The name that now holds the content.

    Raises
    ------
    FileExistsError
        If every name holds other content.
    OSError
        If the directory or the file cannot be written.
    """
    candidates = iter(names)
    first = next(candidates)
    first.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{first.name}.", suffix=".part", dir=first.parent
    )
    tmp = Path(tmp_name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as raw:
            write(raw)
            raw.flush()
            os.fsync(raw.fileno())
        for name in (first, *candidates):
            if name.parent != first.parent:
                raise ValueError(f"{name} is not in {first.parent}")
            try:
                _publish(tmp, name, False)
            except FileExistsError:
                if same(name):
                    return name
                continue
            _fsync_dir(first.parent)
            return name
        raise FileExistsError(errno.EEXIST, "Every name is taken", str(first))
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(
    hdulist: fits.HDUList,
    target: Path,
    overwrite: bool = False,
    checksum: bool = True,
    gzip_level: int = 1,
    roots: Sequence[Path] | None = None,
) -> tuple[str | None, str | None]:
    """Writes an HDU list to ``target`` atomically (blocking).

    ``roots``, if given, are the directories the file must stay inside (see
    `atomic_stream`).

    Files whose name ends in ``.gz`` are gzip-compressed as they are written,
    at ``gzip_level``, without re-opening the written file.

    Returns
    -------
    sums
        ``(DATASUM, CHECKSUM)`` of the first HDU with data.
    """
    sums: list[tuple[str | None, str | None]] = []

    def write(raw: Any) -> None:
        prepared = fitsio_fast.prepare(hdulist, checksum, compress.compress_hdu)
        if target.name.endswith(".gz"):
            with gzip.GzipFile(
                fileobj=raw,
                mode="wb",
                compresslevel=gzip_level,
                filename=target.name[:-3],
                mtime=0,
            ) as gz:
                if prepared is None:
                    hdulist.writeto(gz, checksum=checksum)
                else:
                    fitsio_fast.write_stream(prepared, gz)
        elif prepared is None:
            hdulist.writeto(raw, checksum=checksum)
        else:
            raw.flush()
            fitsio_fast.write_fd(prepared, raw.fileno())
        sums.append(_sums(hdulist) if prepared is None else prepared.sums())

    atomic_stream(target, overwrite, write, roots)
    return sums[0]


def _sums(hdulist: fits.HDUList) -> tuple[str | None, str | None]:
    for hdu in hdulist:
        if hdu.header.get("NAXIS", 0) > 0 or hdu.header.get("ZNAXIS", 0) > 0:
            return hdu.header.get("DATASUM"), hdu.header.get("CHECKSUM")
    return hdulist[0].header.get("DATASUM"), hdulist[0].header.get("CHECKSUM")
