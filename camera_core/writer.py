"""No-loss FITS writing: atomic writes, retries and the spool.

A frame is written atomically (`camera_core.atomic`): a reader never sees a
partial file and an existing file is never replaced unless asked. Transient
errors are retried with backoff; when the target stays unwritable the frame
goes to a spool directory with a JSON sidecar that records where it was meant
to go and its header (`camera_core.spool`), and `recover` writes it there
later.

Images and tile-compressed images are serialised by `camera_core.fitsio_fast`
(one pass for conversion and checksums, tiles compressed on every core by
`camera_core.compress`); anything it does not handle is written by astropy.
Both give the same bytes.

The functions that touch the disk are synchronous and run in an executor;
`write_hdulist` is the asynchronous entry point.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astropy.io import fits

from .atomic import OutsideRootError, atomic_stream, write_atomic
from .spool import FaultHook, RecoverResult, recover, spool_frame
from .utils import run_in_executor

__all__ = [
    "RecoverResult",
    "WriteResult",
    "atomic_stream",
    "recover",
    "write_atomic",
    "write_hdulist",
]

#: Errors that retrying will not fix.
_PERMANENT = (FileExistsError, IsADirectoryError, NotADirectoryError, OutsideRootError)

#: Errors worth retrying; any other exception (an astropy ``VerifyError``, say)
#: sends the frame to the spool at once.
_TRANSIENT = (OSError, MemoryError)


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
    sidecar
        The JSON sidecar of a spooled frame.
    target_exists
        Whether the frame was spooled because its target already existed.
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
    roots: Sequence[Path] | None = None,
) -> WriteResult:
    """Writes a frame without ever dropping it.

    With ``roots``, the target's directory must still resolve inside one of
    them when the file is created (a symbolic link swapped in after the name
    was checked sends the frame to the spool instead).

    Every attempt runs in an executor. Transient `OSError` and `MemoryError`
    are retried up to ``retries`` times with exponential ``backoff`` (seconds).
    If the target stays unwritable, or the write fails with any other
    exception, the frame is written to ``spool_dir`` with a JSON sidecar.

    A target that exists (with ``overwrite`` False) is not retried: the frame
    goes straight to the spool and ``target_exists`` is set in the result.

    Raises
    ------
    FileExistsError
        If the target exists, ``overwrite`` is False and there is no spool.
    OSError
        If the target and the spool both failed, whatever the exception (it is
        the ``__cause__``). The caller still holds the frame.
    """
    target = Path(target).expanduser()
    metadata = {} if metadata is None else metadata
    attempts = 0
    last_error: Exception | None = None
    while attempts <= retries:
        attempts += 1
        try:
            datasum, check = await run_in_executor(
                _attempt,
                hdulist,
                target,
                overwrite,
                checksum,
                gzip_level,
                fault_hook,
                roots,
            )
            return WriteResult(target, target, False, datasum, check, None, attempts)
        except Exception as err:  # any failure is a failed write, never a loss
            last_error = err
            if not isinstance(err, _TRANSIENT) or isinstance(err, _PERMANENT):
                break  # retrying cannot help: spool at once
            if attempts <= retries:
                await asyncio.sleep(backoff * 2 ** (attempts - 1))
    assert last_error is not None
    error = f"{type(last_error).__name__}: {last_error}"
    if spool_dir is None:
        if isinstance(last_error, OSError):
            raise last_error
        raise OSError(f"could not write {target} ({error})") from last_error
    try:
        spool_file, sidecar, (datasum, check) = await run_in_executor(
            spool_frame,
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
    except Exception as spool_err:
        raise _as_oserror(
            spool_err,
            f"could not write {target} ({error}) nor spool it to {spool_dir} "
            f"({type(spool_err).__name__}: {spool_err})",
        ) from spool_err
    exists = isinstance(last_error, FileExistsError)
    return WriteResult(
        target, spool_file, True, datasum, check, error, attempts, sidecar, exists
    )


def _as_oserror(err: BaseException, message: str) -> OSError:
    """An `OSError` that says ``message``, keeping ``err``'s errno if any."""
    if isinstance(err, OSError):
        return OSError(err.errno, message)
    return OSError(message)


def _attempt(
    hdulist: fits.HDUList,
    target: Path,
    overwrite: bool,
    checksum: bool,
    gzip_level: int,
    fault_hook: FaultHook | None,
    roots: Sequence[Path] | None = None,
) -> tuple[str | None, str | None]:
    if fault_hook is not None:
        fault_hook(target, False)
    return write_atomic(hdulist, target, overwrite, checksum, gzip_level, roots)
