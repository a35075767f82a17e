"""Quick look after each written frame: ``frame_stats`` and a PNG ``preview``.

Configured by ``actor.quicklook`` (`QUICKLOOK_CONFIG`). After a frame is
written to its target (not when it was spooled or kept in memory), the
statistics of the in-memory frame and its preview are computed in an
executor (`camera_core.quicklook`), never on the event loop, and reported
after the ``filename`` keyword. A failure never fails the exposure: the
keyword is sent as a warning with its ``error``.

A camera's ``saturation`` configuration key (ADU) sets the level above which
pixels count as saturated; without it, that of the data type is used.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camera_core import Exposure
from camera_core.quicklook import frame_stats, preview_path, write_preview
from camera_core.utils import run_in_executor

from .tools import to_json

if TYPE_CHECKING:
    from clu import Command

__all__ = ["QUICKLOOK_CONFIG", "QuicklookSettings", "report_quicklook"]

_DEFAULTS = {"enabled": True, "max_size": 1024, "stars": True, "dir": None}

#: The JSON Schema of ``actor.quicklook`` (each key with its default).
QUICKLOOK_CONFIG: dict[str, Any] = {
    "type": "object",
    "default": _DEFAULTS,
    "description": "Quick look of each written frame: a frame_stats keyword "
    "(stars and FWHM of object frames if stars) and a zscaled PNG preview, "
    "longest side at most max_size, next to the FITS file or under dir "
    "(relative to data_dir).",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean", "default": True},
        "max_size": {"type": "integer", "minimum": 1, "default": 1024},
        "stars": {"type": "boolean", "default": True},
        "dir": {"type": ["string", "null"], "minLength": 1, "default": None},
    },
}

_STATS_FIELDS = (
    "median",
    "mean",
    "std",
    "min",
    "max",
    "saturated_fraction",
    "saturation",
    "stars",
    "fwhm_px",
)


@dataclasses.dataclass(frozen=True)
class QuicklookSettings:
    """The ``actor.quicklook`` settings.

    Attributes
    ----------
    enabled
        Whether frames get statistics and a preview at all.
    max_size
        Largest side of the preview, in pixels.
    stars
        Whether object frames get a star count and FWHM.
    dir
        Directory of the previews (they mirror the layout under the data
        directory); `None` writes each next to its FITS file.
    data_dir
        The actor's data directory.
    """

    enabled: bool = True
    max_size: int = 1024
    stars: bool = True
    dir: Path | None = None
    data_dir: Path | None = None

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any] | None, data_dir: str | Path | None = None
    ) -> QuicklookSettings:
        """The settings of an ``actor.quicklook`` section (missing keys default).

        A relative ``dir`` is relative to ``data_dir``; ``~`` is expanded.
        """
        values = {**_DEFAULTS, **(section or {})}
        root = None if data_dir is None else Path(data_dir).expanduser()
        directory = values["dir"]
        if directory is not None:
            directory = Path(directory).expanduser()
            if not directory.is_absolute() and root is not None:
                directory = root / directory
        return cls(
            enabled=bool(values["enabled"]),
            max_size=int(values["max_size"]),
            stars=bool(values["stars"]),
            dir=directory,
            data_dir=root,
        )


def _reason(err: BaseException) -> str:
    return str(err) or type(err).__name__


async def report_quicklook(command: Command, exposure: Exposure) -> None:
    """Reports ``frame_stats`` and writes the ``preview`` of a written frame.

    Does nothing when quick look is disabled, or when the frame was spooled or
    not written. Errors become warnings; nothing here raises, except a
    cancellation.
    """
    settings: QuicklookSettings = getattr(
        command.actor, "quicklook", QuicklookSettings()
    )
    result = exposure.write_result
    data = exposure.data
    if not settings.enabled or result is None or result.spooled or data is None:
        return
    camera = exposure.camera
    base = {
        "camera": camera.name,
        "exposure_id": exposure.exposure_id,
        "filename": str(result.path),
    }
    stars = settings.stars and exposure.image_type == "object"
    saturation = camera.camera_params.get("saturation")
    path = preview_path(result.path, settings.dir, settings.data_dir)
    # Both in the executor at once: numpy releases the GIL for much of each.
    stats, preview = await asyncio.gather(
        run_in_executor(frame_stats, data, saturation, stars),
        run_in_executor(write_preview, data, path, settings.max_size),
        return_exceptions=True,
    )
    if isinstance(stats, BaseException):
        command.warning(
            frame_stats=to_json(
                {
                    **base,
                    **dict.fromkeys(_STATS_FIELDS),
                    "error": f"Statistics of {result.path} failed: {_reason(stats)}. "
                    "The frame is saved; check the camera's saturation setting.",
                }
            )
        )
    else:
        command.info(frame_stats=to_json({**base, **stats.as_dict(), "error": None}))
    if isinstance(preview, BaseException):
        command.warning(
            preview=to_json(
                {
                    **base,
                    "path": str(path),
                    "width": None,
                    "height": None,
                    "error": f"Preview {path} not written: {_reason(preview)}. The "
                    "frame is saved; make actor.quicklook.dir writable or set "
                    "actor.quicklook.enabled to false.",
                }
            )
        )
        return
    command.info(
        preview=to_json(
            {
                **base,
                "path": str(preview.path),
                "width": preview.width,
                "height": preview.height,
                "error": None,
            }
        )
    )
