"""The spool: frames that could not reach their target, and their recovery.

When a frame's target stays unwritable, `spool_frame` writes the frame, byte
for byte as it would have been written, to the spool directory together with
a JSON sidecar (``<file>.json``) that records its target, camera, exposure id,
the error, its checksums and its header cards. `recover` later verifies each
spooled file's checksums and copies it, atomically, to its target.

Spooling holds a shared lock on the spool directory while it writes a frame
and its sidecar, and `recover` an exclusive one, so a recovery (of this
process or of another one, such as ``camactor recover``) never sees a frame
without its sidecar, and two recoveries never race for the same frame.

Frames that could be written neither to their target nor to the spool stay in
memory (`camera_core.camera.BaseCamera.unsaved_exposures`); `recover_unsaved`
writes them again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astropy.io import fits
from astropy.time import Time

from .atomic import atomic_stream, atomic_stream_free, write_atomic
from .exceptions import ExposureError, ExposureWriteError
from .spool_files import (
    LOCK_TIMEOUT,
    MAX_ALTERNATIVES,
    SpoolBusyError,
    dir_lock,
    header_cards,
    recovered_names,
    same_file,
    verify_file,
)
from .utils import run_in_executor

if TYPE_CHECKING:
    from .exposure import Exposure

__all__ = [
    "LOCK_TIMEOUT",
    "RecoverResult",
    "SpoolBusyError",
    "recover",
    "recover_all",
    "recover_unsaved",
    "recovered_names",
    "spool_frame",
]

#: Called before each write attempt with the path and whether it is the spool.
FaultHook = Callable[[Path, bool], None]


@dataclasses.dataclass
class RecoverResult:
    """The outcome of recovering one frame.

    Attributes
    ----------
    spool_file
        The spooled file (`None` for a frame that was only in memory).
    target
        Where the frame belongs (`None` if unknown: a bad or missing sidecar).
    recovered
        Whether the frame is now at its target.
    error
        Why it is not, or a warning about a recovered frame.
    camera
        The camera that took the frame, if known.
    exposure_id
        The frame's exposure id, if known.
    source
        ``"spool"`` or ``"memory"``.
    path
        Where the recovered frame now is: its target or, when the target holds
        another frame, ``<stem>-recovered-<N><suffix>`` next to it.
    """

    spool_file: Path | None
    target: Path | None
    recovered: bool
    error: str | None = None
    camera: str | None = None
    exposure_id: str | None = None
    source: str = "spool"
    path: Path | None = None


def spool_frame(
    hdulist: fits.HDUList,
    target: Path,
    spool_dir: Path,
    checksum: bool,
    gzip_level: int,
    metadata: dict[str, Any],
    error: str,
    overwrite: bool,
    fault_hook: FaultHook | None = None,
) -> tuple[Path, Path, tuple[str | None, str | None]]:
    """Writes a frame and its JSON sidecar to the spool (blocking).

    Returns
    -------
    spooled
        The spooled file, its sidecar and ``(DATASUM, CHECKSUM)``.

    Raises
    ------
    OSError
        If the spool cannot be written; nothing is left in it then.
    """
    stamp = Time.now().utc.strftime("%Y%m%dT%H%M%S")
    exposure_id = str(metadata.get("exposure_id", "frame"))
    spool_file = spool_dir / f"{stamp}-{exposure_id}-{target.name}"
    sidecar_path = spool_file.with_name(spool_file.name + ".json")
    if fault_hook is not None:
        fault_hook(spool_file, True)
    spool_dir.mkdir(parents=True, exist_ok=True)
    with dir_lock(spool_dir, exclusive=False):
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
            "header": header_cards(hdulist),
        }
        text = json.dumps(sidecar, indent=1, default=str).encode()
        try:
            atomic_stream(sidecar_path, False, lambda raw: raw.write(text))
        except BaseException:
            spool_file.unlink(missing_ok=True)  # no frame without its sidecar
            raise
    return spool_file, sidecar_path, (datasum, check)


def _recover_one(
    spool_dir: Path,
    sidecar_path: Path,
    fault_hook: FaultHook | None,
) -> RecoverResult:
    try:
        sidecar = json.loads(sidecar_path.read_text())
        spool_file = spool_dir / sidecar["spool_file"]
        target = Path(sidecar["target"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return RecoverResult(
            sidecar_path, None, False, f"bad sidecar ({err}); recover it by hand"
        )
    result = RecoverResult(
        spool_file,
        target,
        False,
        camera=sidecar.get("camera"),
        exposure_id=sidecar.get("exposure_id"),
    )
    if not spool_file.exists():
        if target.exists():  # recovered earlier, but the sidecar stayed
            sidecar_path.unlink(missing_ok=True)
            result.recovered = True
            result.path = target
        else:
            result.error = f"{spool_file} is missing; only its sidecar is left"
        return result
    try:
        verify_file(spool_file, sidecar.get("datasum"))
    except (OSError, ValueError) as err:
        result.error = f"not recovered, the spooled file is damaged: {err}"
        return result
    try:
        if fault_hook is not None:
            fault_hook(target, False)
        with open(spool_file, "rb") as src:
            # Never replaces a file: a target that holds another frame (its
            # name was reused, say) keeps it, and this frame goes next to it.
            result.path = atomic_stream_free(
                recovered_names(target),
                lambda raw: shutil.copyfileobj(src, raw, 1 << 22),
                lambda path: same_file(spool_file, path),
            )
    except FileExistsError:
        result.error = (
            f"{target} and its {MAX_ALTERNATIVES} '-recovered-N' names all hold "
            "other files; the frame stays in the spool: move those files away"
        )
        return result
    except OSError as err:
        result.error = f"{target} is still not writable: {err}"
        return result
    result.recovered = True
    if result.path != target:
        result.error = (
            f"{target} holds another frame, so this one was written to {result.path}"
        )
    try:
        spool_file.unlink()
        sidecar_path.unlink()
    except OSError as err:
        result.error = f"recovered, but not removed from the spool: {err}"
    return result


def recover(
    spool_dir: Path | str,
    fault_hook: FaultHook | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> list[RecoverResult]:
    """Writes every spooled frame to its original target (blocking).

    Each spooled file's checksums are verified, then its bytes (the full
    original header and data) are copied to the target atomically. No file is
    ever replaced: when the target holds another file (its name was reused
    after a restart, say), the frame is written next to it as
    ``<stem>-recovered-<N><suffix>`` (the first free ``N``) and
    `RecoverResult.path` says so. A target that already holds the identical
    file counts as recovered. A frame is removed from the spool only after it
    is written; one whose target is still unwritable or that fails its
    checksums stays in the spool. Files without a sidecar are reported, never
    guessed at.

    Parameters
    ----------
    spool_dir
        The spool directory.
    fault_hook
        Called before each write with ``(path, False)``; for fault injection.
    lock_timeout
        How long (s) to wait for another process that holds the spool lock.

    Returns
    -------
    results
        One `RecoverResult` per spooled frame found or, if the spool stays
        locked by another process, one that says the spool is busy.
    """
    spool_dir = Path(spool_dir).expanduser()
    if not spool_dir.is_dir():
        return []
    try:
        with dir_lock(spool_dir, exclusive=True, timeout=lock_timeout):
            return _recover_locked(spool_dir, fault_hook)
    except SpoolBusyError as err:  # only the lock raises it
        return [RecoverResult(spool_dir, None, False, str(err))]


def _recover_locked(
    spool_dir: Path, fault_hook: FaultHook | None
) -> list[RecoverResult]:
    results: list[RecoverResult] = []
    sidecars = [  # a frame may itself be named *.json: its sidecar is not
        path
        for path in sorted(spool_dir.glob("*.json"))
        if not path.with_name(path.name + ".json").exists()
    ]
    for sidecar_path in sidecars:
        results.append(_recover_one(spool_dir, sidecar_path, fault_hook))
    known = {path.name[: -len(".json")] for path in sidecars}
    for path in sorted(spool_dir.iterdir()):
        if path.name.startswith(".") or path in sidecars:
            continue
        if path.name not in known and path.is_file():
            results.append(
                RecoverResult(
                    path,
                    None,
                    False,
                    "no sidecar, so its target is unknown; the file holds "
                    "the frame and its header: move it by hand",
                )
            )
    return results


def _recover_spooled(sidecar_path: Path) -> RecoverResult:
    """Recovers the one frame of a sidecar (blocking)."""
    with dir_lock(sidecar_path.parent, exclusive=True):
        return _recover_one(sidecar_path.parent, sidecar_path, None)


async def recover_unsaved(exposures: Iterable[Exposure]) -> list[RecoverResult]:
    """Writes frames held in memory again: to their target, else the spool.

    A frame whose target now holds another file goes, like a spooled one, next
    to it as ``<stem>-recovered-<N><suffix>``; no file is replaced.

    Parameters
    ----------
    exposures
        Exposures whose write failed even to the spool
        (`~camera_core.camera.BaseCamera.unsaved_exposures`).

    Returns
    -------
    results
        One `RecoverResult` per exposure (``source`` ``"memory"``).
    """
    results = []
    for exposure in list(exposures):
        result = RecoverResult(
            None,
            None if exposure.filename is None else Path(exposure.filename),
            False,
            camera=exposure.camera.name,
            exposure_id=exposure.exposure_id,
            source="memory",
        )
        results.append(result)
        try:
            await exposure.write()
        except ExposureWriteError as err:  # still nowhere to go: still held
            result.error = str(err)
            continue
        except ExposureError as err:  # written with a warning, or spooled
            result.error = str(err)
        written = exposure.write_result
        result.recovered = not written.spooled
        result.path = None if written.spooled else written.path
        if written.spooled and written.target_exists and written.sidecar is not None:
            try:
                again = await run_in_executor(_recover_spooled, written.sidecar)
            except SpoolBusyError as err:
                again = RecoverResult(written.path, result.target, False, str(err))
            result.recovered, result.path = again.recovered, again.path
            result.error = again.error
            result.spool_file = None if again.recovered else written.path
        elif written.spooled:
            result.spool_file = written.path
            if not written.target_exists:
                result.error = (
                    f"{written.target} is still not writable ({written.error}); "
                    f"the frame is now in the spool as {written.path}"
                )
    return results


async def recover_all(
    exposures: Iterable[Exposure], spool_dirs: Iterable[Path | str]
) -> list[RecoverResult]:
    """Recovers the spool directories, then the frames held in memory.

    The spool is recovered first (in an executor), so a frame from memory that
    can only reach the spool is reported once.
    """
    results: list[RecoverResult] = []
    for spool_dir in dict.fromkeys(Path(d).expanduser() for d in spool_dirs):
        results.extend(await run_in_executor(recover, spool_dir))
    results.extend(await recover_unsaved(exposures))
    return results
