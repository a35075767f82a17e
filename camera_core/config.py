"""Loading configuration files and default paths."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import yaml

from .exceptions import CameraError

__all__ = ["default_spool_dir", "load_config"]


def default_spool_dir() -> pathlib.Path:
    """The default spool directory: ``$XDG_STATE_HOME/camactor/spool``.

    ``XDG_STATE_HOME`` defaults to ``~/.local/state``.
    """
    state = os.environ.get("XDG_STATE_HOME")
    base = pathlib.Path(state) if state else pathlib.Path.home() / ".local" / "state"
    return base / "camactor" / "spool"


def load_config(config: str | os.PathLike | dict[str, Any] | None) -> dict[str, Any]:
    """Loads a configuration mapping from a YAML file path or a mapping.

    Raises
    ------
    CameraError
        If the file cannot be read, is not valid YAML or is not a mapping.
    """
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    path = pathlib.Path(config).expanduser()
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as err:
        raise CameraError(f"Cannot read the configuration {path}: {err}") from err
    except yaml.YAMLError as err:
        raise CameraError(f"Invalid YAML in {path}: {err}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise CameraError(f"The configuration {path} must be a mapping.")
    return loaded


def default_config_path() -> pathlib.Path:
    """The packaged default configuration, ``etc/camactor.yml``."""
    from importlib.resources import files

    return pathlib.Path(str(files("camactor_etc").joinpath("camactor.yml")))
