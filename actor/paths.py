"""Keeping file names from commands inside the configured data directories."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["UnsafePathError", "contained_path"]


class UnsafePathError(ValueError):
    """A file name from a command that would leave the allowed directories."""


def contained_path(filename: str, base: Path, roots: Sequence[Path]) -> Path:
    """The absolute path of ``filename``, checked to stay inside ``roots``.

    Blocking (it resolves symbolic links): run it in an executor.

    Parameters
    ----------
    filename
        A file name from a command, relative to ``base`` or absolute. ``~`` is
        expanded.
    base
        The directory of relative names (the camera's image directory).
    roots
        The allowed directories. The path, with ``..`` and every symbolic link
        resolved, must be strictly inside one of them.

    Returns
    -------
    path
        The resolved path: the one that was checked is the one written.

    Raises
    ------
    UnsafePathError
        If the name is empty, has a NUL byte, names a directory, or resolves
        outside every root. The message names the allowed directories.
    """
    allowed = " or ".join(str(root) for root in roots)
    if "\0" in filename or os.path.basename(filename) in ("", ".", ".."):
        raise UnsafePathError(
            f"--filename {filename!r} is not a file name; give a name such as "
            f"'flat-1.fits', inside {allowed}."
        )
    try:
        path = Path(filename).expanduser()
    except RuntimeError as err:  # ~user with no such user
        raise UnsafePathError(f"--filename {filename!r}: {err}.") from None
    if not path.is_absolute():
        path = base / path
    resolved = path.resolve()
    real_roots = [root.expanduser().resolve() for root in roots]
    for real_root in real_roots:
        if resolved.is_relative_to(real_root) and resolved not in real_roots:
            if resolved.is_dir():
                raise UnsafePathError(
                    f"--filename {filename!r} is a directory; give a file name."
                )
            return resolved
    raise UnsafePathError(
        f"--filename {filename!r} resolves to {resolved}, outside the data "
        f"directory; file names must stay inside {allowed}."
    )
