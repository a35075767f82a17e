"""No-loss FITS writing: atomic writes, retries, a spool and its recovery.

A frame is first written to a temporary file in the target directory, fsynced,
and then linked (or, when overwriting, renamed) into place, so a reader never
sees a partial file and an existing file is never replaced unless asked. When
the target stays unwritable after the retries, the frame goes to a spool
directory together with a JSON sidecar that records where it was meant to go
and its header. `recover` writes spooled frames to their targets later.

Images and tile-compressed images are serialised by `camera_core.fitsio_fast`
(one pass for conversion and checksums, tiles compressed on every core by
`camera_core.compress`); anything it does not handle is written by astropy.
Both give the same bytes.

The functions that touch the disk are synchronous and meant to run in an
executor; `write_hdulist` is the asynchronous entry point.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from astropy.io import fits
from astropy.time import Time

from . import compress, fitsio_fast
from .utils import run_in_executor

__all__ = ["WriteResult", "recover", "write_atomic", "write_hdulist"]

#: Called before each write attempt with the path and whether it is the spool.
FaultHook = Callable[[Path, bool], None]

#: Errors that retrying will not fix.
_PERMANENT = (FileExistsError, IsADirectoryError, NotADirectoryError)


@dataclasses.dataclass
class WriteResult:
    """The outcome of writing a frame.

    Attributes
    ----------
    target
        Where the frame was meant to be written.
    path
        Where the frame is now: the target, or the spool file if spooled.
    spooled
        Whether the frame went to the spool instead of its target.
    datasum
        The DATASUM of the first HDU with data (`None` without checksums).
    checksum
        The CHECKSUM of that HDU.
    error
        Why the target could not be written, when spooled.
    attempts
        How many times the target write was attempted.
    """

    target: Path
    path: Path
    spooled: bool = False
    datasum: str | None = None
    checksum: str | None = None
    error: str | None = None
    attempts: int = 1
    sidecar: Path | None = None
    target_exists: bool = False


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


def _atomic_stream(
    target: Path,
    overwrite: bool,
    write: Callable[[Any], None],
) -> None:
    """Creates ``target`` through a fsynced temporary file in its directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and target.exists():
        raise FileExistsError(errno.EEXIST, "File exists", str(target))
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
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
        _publish(tmp, target, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_atomic(
    hdulist: fits.HDUList,
    target: Path,
    overwrite: bool = False,
    checksum: bool = True,
    gzip_level: int = 1,
) -> tuple[str | None, str | None]:
    """Writes an HDU list to ``target`` atomically (blocking).

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

    _atomic_stream(target, overwrite, write)
    return sums[0]


def _sums(hdulist: fits.HDUList) -> tuple[str | None, str | None]:
    for hdu in hdulist:
        if hdu.header.get("NAXIS", 0) > 0 or hdu.header.get("ZNAXIS", 0) > 0:
            return hdu.header.get("DATASUM"), hdu.header.get("CHECKSUM")
    return hdulist[0].header.get("DATASUM"), hdulist[0].header.get("CHECKSUM")


def _header_cards(hdulist: fits.HDUList) -> list[list[Any]]:
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


def _spool(
    hdulist: fits.HDUList,
    target: Path,
    spool_dir: Path,
    checksum: bool,
    gzip_level: int,
    metadata: dict[str, Any],
    error: str,
    overwrite: bool,
    fault_hook: FaultHook | None,
) -> tuple[Path, Path, tuple[str | None, str | None]]:
    stamp = Time.now().utc.strftime("%Y%m%dT%H%M%S")
    exposure_id = str(metadata.get("exposure_id", "frame"))
    spool_file = spool_dir / f"{stamp}-{exposure_id}-{target.name}"
    if fault_hook is not None:
        fault_hook(spool_file, True)
    datasum, check = write_atomic(hdulist, spool_file, False, checksum, gzip_level)
    sidecar = {
        **metadata,
        "target": str(target),
        "spool_file": spool_file.name,
        "spooled_at": Time.now().utc.isot,
        "error": error,
        "overwrite": overwrite,
        "datasum": datasum,
        "checksum": check,
        "header": _header_cards(hdulist),
    }
    sidecar_path = spool_file.with_name(spool_file.name + ".json")
    text = json.dumps(sidecar, indent=1, default=str).encode()
    _atomic_stream(sidecar_path, False, lambda raw: raw.write(text))
    return spool_file, sidecar_path, (datasum, check)


async def write_hdulist(
    hdulist: fits.HDUList,
    target: Path,
    overwrite: bool = False,
    checksum: bool = True,
    gzip_level: int = 1,
    retries: int = 3,
    backoff: float = 0.1,
    spool_dir: Path | None = None,
    metadata: dict[str, Any] | None = None,
    fault_hook: FaultHook | None = None,
) -> WriteResult:
    """Writes a frame without ever dropping it.

    Every attempt runs in an executor. Transient `OSError` are retried up to
    ``retries`` times with exponential ``backoff`` (seconds). If the target stays
    unwritable the frame is written to ``spool_dir`` with a JSON sidecar.

    A target that exists (with ``overwrite`` False) is not retried: the frame
    goes straight to the spool and ``target_exists`` is set in the result.

    Raises
    ------
    FileExistsError
        If the target exists, ``overwrite`` is False and there is no spool.
    OSError
        If the target and the spool both failed. The caller still holds the frame.
    """
    target = Path(target).expanduser()
    metadata = {} if metadata is None else metadata
    attempts = 0
    last_error: OSError | None = None
    while attempts <= retries:
        attempts += 1
        try:
            datasum, check = await run_in_executor(
                _attempt, hdulist, target, overwrite, checksum, gzip_level, fault_hook
            )
            return WriteResult(target, target, False, datasum, check, None, attempts)
        except _PERMANENT as err:  # retrying cannot help: spool at once
            last_error = err
            break
        except OSError as err:
            last_error = err
            if attempts <= retries:
                await asyncio.sleep(backoff * 2 ** (attempts - 1))
    assert last_error is not None
    error = f"{type(last_error).__name__}: {last_error}"
    if spool_dir is None:
        raise last_error
    try:
        spool_file, sidecar, (datasum, check) = await run_in_executor(
            _spool,
            hdulist,
            target,
            Path(spool_dir).expanduser(),
            checksum,
            gzip_level,
            metadata,
            error,
            overwrite,
            fault_hook,
        )
    except OSError as spool_err:
        raise OSError(
            spool_err.errno,
            f"could not write {target} ({error}) nor spool it to {spool_dir} "
            f"({spool_err})",
        ) from spool_err
    exists = isinstance(last_error, FileExistsError)
    return WriteResult(
        target, spool_file, True, datasum, check, error, attempts, sidecar, exists
    )


def _attempt(
    hdulist: fits.HDUList,
    target: Path,
    overwrite: bool,
    checksum: bool,
    gzip_level: int,
    fault_hook: FaultHook | None,
) -> tuple[str | None, str | None]:
    if fault_hook is not None:
        fault_hook(target, False)
    return write_atomic(hdulist, target, overwrite, checksum, gzip_level)


@dataclasses.dataclass
class RecoverResult:
    """The outcome of recovering one spooled frame."""

    spool_file: Path
    target: Path
    recovered: bool
    error: str | None = None


def recover(
    spool_dir: Path | str,
    overwrite: bool = False,
    fault_hook: FaultHook | None = None,
) -> list[RecoverResult]:
    """Writes every spooled frame to its original target (blocking).

    The spooled file already holds the full header and checksums, so its bytes
    are copied as they are, atomically. A frame is removed from the spool only
    after its target is written; a frame whose target exists (and ``overwrite``
    is False) or is still unwritable stays in the spool.

    Parameters
    ----------
    spool_dir
        The spool directory.
    overwrite
        Whether to replace existing target files.
    fault_hook
        Called before each write with ``(path, False)``; for fault injection.

    Returns
    -------
    results
        One `RecoverResult` per spooled frame found.
    """
    spool_dir = Path(spool_dir).expanduser()
    results: list[RecoverResult] = []
    if not spool_dir.is_dir():
        return results
    for sidecar_path in sorted(spool_dir.glob("*.json")):
        try:
            sidecar = json.loads(sidecar_path.read_text())
            spool_file = spool_dir / sidecar["spool_file"]
            target = Path(sidecar["target"])
        except (OSError, ValueError, KeyError) as err:
            results.append(
                RecoverResult(sidecar_path, Path(), False, f"bad sidecar: {err}")
            )
            continue
        try:
            if fault_hook is not None:
                fault_hook(target, False)
            with open(spool_file, "rb") as src:
                _atomic_stream(
                    target, overwrite, lambda raw: shutil.copyfileobj(src, raw, 1 << 22)
                )
        except OSError as err:
            hint = (
                " (pass overwrite=True to replace it)"
                if isinstance(err, FileExistsError)
                else ""
            )
            results.append(RecoverResult(spool_file, target, False, f"{err}{hint}"))
            continue
        spool_file.unlink(missing_ok=True)
        sidecar_path.unlink(missing_ok=True)
        results.append(RecoverResult(spool_file, target, True))
    return results
