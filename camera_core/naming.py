"""Sequential image file names from safe templates (`ImageNamer`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from astropy.time import Time

from .exceptions import CameraError
from .template import Template

if TYPE_CHECKING:
    from .camera import BaseCamera

__all__ = ["ImageNamer"]


#: Characters that would make a file name a path.
_SEPARATORS = frozenset({"/", os.sep, os.altsep or "/"})


class ImageNamer:
    """Creates a new sequential filename for an image.

    Both templates use the safe template language of `camera_core.template`:
    fields such as ``{camera.name}``, ``{num:04d}`` and ``{int(date.mjd)}``.

    Parameters
    ----------
    basename
        The basename of the image filenames. Must contain a ``num`` field.
    dirname
        The directory for the images. Can use ``date`` (an `~astropy.time.Time`
        with the current time) and ``camera``.
    overwrite
        If `True`, the sequence starts at 1 regardless of existing images.
        Otherwise numbers of files already in the directory are skipped.
    camera
        A camera instance. It can also be passed when calling the instance.
    reset_sequence
        Resets the sequence number when the directory changes.

    Raises
    ------
    TemplateError
        If a template is invalid, ``basename`` has no ``num`` field or is not a
        plain file name, or ``dirname`` has a ``..`` component.

    Notes
    -----
    Rendered names cannot leave the directory: a field value (a camera name
    reported by a device, say) that puts ``/`` in the file name or ``..`` in
    the directory makes the call raise `CameraError` instead.
    """

    def __init__(
        self,
        basename: str = "{camera.name}-{num:04d}.fits",
        dirname: str = ".",
        overwrite: bool = False,
        camera: BaseCamera | None = None,
        reset_sequence: bool = True,
    ) -> None:
        from .exceptions import TemplateError

        self._basename = Template(basename)
        self._dirname = Template(str(dirname))
        unknown = (self._basename.names | self._dirname.names) - {
            "camera",
            "num",
            "date",
        }
        if unknown:
            raise TemplateError(
                f"Unknown name(s) {sorted(unknown)} in image name templates; "
                "use camera, num and date."
            )
        if "num" not in self._basename.names:
            raise TemplateError(
                f"Image basename {basename!r} needs a {{num}} field, e.g. "
                "'{camera.name}-{num:04d}.fits'."
            )
        if _SEPARATORS & set(basename):
            raise TemplateError(
                f"Image basename {basename!r} must be a file name without '/'; "
                "put directories in dirname."
            )
        if ".." in Path(str(dirname)).parts:
            raise TemplateError(
                f"Image dirname {str(dirname)!r} must not have a '..' component."
            )
        self.basename = basename
        self.dirname = str(dirname)
        self.overwrite = overwrite
        self.camera = camera
        self.reset_sequence = reset_sequence
        self._last_num = 0
        self._last_dirname: Path | None = None

    def get_dirname(self, camera: BaseCamera | None = None) -> Path:
        """Returns the directory for the next image."""
        camera = camera if camera is not None else self.camera
        rendered = self._dirname.render({"camera": camera, "date": Time.now()})
        if ".." in Path(rendered).parts or "\0" in rendered:
            raise CameraError(
                f"Image directory {rendered!r} (from {self.dirname!r}) leaves the "
                "configured directory; camera names and other fields must not "
                "contain '..'."
            )
        return Path(rendered).expanduser()

    def _path(self, dirname: Path, num: int, camera: BaseCamera | None) -> Path:
        name = self._basename.render({"camera": camera, "num": num, "date": Time.now()})
        if _SEPARATORS & set(name) or name in ("", ".", "..") or "\0" in name:
            raise CameraError(
                f"Image name {name!r} (from {self.basename!r}) is not a plain file "
                "name; camera names and other fields must not contain '/'. Give "
                "the camera a name in the configuration."
            )
        return dirname / name

    def __call__(
        self, camera: BaseCamera | None = None, num: int | None = None
    ) -> Path:
        """Returns the path for the next image in the sequence.

        Parameters
        ----------
        camera
            The camera; defaults to the one given at construction.
        num
            Use this sequence number instead of the next one (0 is valid).
        """
        camera = camera if camera is not None else self.camera
        if camera is None:
            raise ValueError("ImageNamer needs a camera.")
        dirname = self.get_dirname(camera)
        if dirname != self._last_dirname:
            if self.reset_sequence or self._last_dirname is None:
                self._last_num = 0
            self._last_dirname = dirname
        if num is not None:
            self._last_num = num
            return self._path(dirname, num, camera)
        num = self._last_num + 1
        if not self.overwrite:
            spooled = _spooled_names(getattr(camera, "spool_dir", None))
            while self._exists(self._path(dirname, num, camera), spooled):
                num += 1
        self._last_num = num
        return self._path(dirname, num, camera)

    @staticmethod
    def _exists(path: Path, spooled: list[str]) -> bool:
        # A name is taken if the file, or its compressed twin, is there, or if
        # a spooled frame waits to be recovered to it.
        name = path.name
        twin = name[:-3] if name.endswith(".gz") else name + ".gz"
        if any(entry.endswith((f"-{name}", f"-{twin}")) for entry in spooled):
            return True
        return path.exists() or path.with_name(twin).exists()


def _spooled_names(spool_dir: str | os.PathLike | None) -> list[str]:
    """The spooled frames' file names (``<stamp>-<exposure id>-<target name>``).

    Only the target's name is matched, not its directory: a name is skipped
    when any spooled frame was meant for it, which at worst leaves a gap.
    """
    if spool_dir is None:
        return []
    try:
        entries = os.listdir(Path(spool_dir).expanduser())
    except OSError:
        return []
    return [e for e in entries if not e.startswith(".") and not e.endswith(".json")]
