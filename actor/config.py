"""Loading, validating and overriding the camactor configuration.

The configuration file (``etc/camactor.yml`` by default) has three sections:
``actor`` (checked here, with defaults filled in), and ``simulator`` and
``cameras`` (only checked to be mappings here; `camera_core` validates their
contents when the camera system is built).

Values are layered, highest first: command-line flags, the environment
variables of `ENV_VARS` (``CAMACTOR_BROKER_*``, ``CAMACTOR_NAME``,
``CAMACTOR_DATA_DIR``), the file, the defaults of `CONFIG_SCHEMA`.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import jsonschema

from camera_core.config import default_config_path
from camera_core.config import load_config as _read_yaml
from camera_core.exceptions import CameraError, TemplateError

from .cli_errors import error_messages
from .cli_secrets import redact_text, redacted
from .config_schema import CONFIG_SCHEMA, PATH_KEYS, thaw
from .quicklook import QUICKLOOK_CONFIG

__all__ = [
    "CONFIG_SCHEMA",
    "ENV_VARS",
    "ConfigError",
    "apply_env",
    "apply_overrides",
    "broker_kwargs",
    "load_config",
    "read_config",
    "redact_text",
    "redacted",
    "validate_config",
]

#: Environment variables and the ``actor`` keys they override.
ENV_VARS: Mapping[str, str] = MappingProxyType(
    {
        "CAMACTOR_BROKER_URL": "url",
        "CAMACTOR_BROKER_HOST": "host",
        "CAMACTOR_BROKER_PORT": "port",
        "CAMACTOR_BROKER_USER": "user",
        "CAMACTOR_BROKER_PASSWORD": "password",
        "CAMACTOR_NAME": "name",
        "CAMACTOR_DATA_DIR": "data_dir",
    }
)

_VALIDATOR = jsonschema.Draft202012Validator(thaw(CONFIG_SCHEMA))


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError if out of range
    except ValueError as err:
        raise ConfigError(f"actor.url {redact_text(url)!r} is invalid: {err}") from err
    if not parts.hostname:
        raise ConfigError(f"actor.url {redact_text(url)!r} has no host")


def _check_templates(actor: Mapping[str, Any]) -> None:
    from camera_core.exposure import ImageNamer

    for key, param in (("image_name", "basename"), ("image_dir", "dirname")):
        try:
            ImageNamer(**{"basename": "{num}", "dirname": ".", param: actor[key]})
        except TemplateError as err:
            raise ConfigError(f"actor.{key} is not a valid template: {err}") from err


#: What a camera name may be: it becomes part of file and directory names, and
#: a word of command lines (so no '/', '..', spaces, or a leading '-').
_CAMERA_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def _check_camera_names(config: Mapping[str, Any]) -> None:
    for name in config["cameras"]:
        if not isinstance(name, str) or not _CAMERA_NAME.fullmatch(name):
            raise ConfigError(
                f"cameras: {name!r} is not a valid camera name; camera names "
                "become file and directory names, so use letters, digits, '_', "
                "'.', '+' and '-', starting with a letter, digit or '_'."
            )


def _check_default_cameras(config: Mapping[str, Any]) -> None:
    cameras = config["cameras"]
    if not cameras:
        return
    known = set(cameras) | {
        str(entry["uid"])
        for entry in cameras.values()
        if isinstance(entry, Mapping) and "uid" in entry
    }
    for index, name in enumerate(config["actor"]["default_cameras"]):
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"actor.default_cameras[{index}]: {name!r} is not a camera "
                f"name or uid in cameras{hint}"
            )


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validates a configuration and returns a normalised copy.

    Missing ``actor`` keys get their defaults, missing sections become empty
    mappings and the paths in `PATH_KEYS` are expanded (``~``).

    Raises
    ------
    ConfigError
        Naming the key path of each problem found.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("the configuration must be a mapping")
    data = copy.deepcopy(dict(config))
    messages = error_messages(list(_VALIDATOR.iter_errors(data)))
    if messages:
        if len(messages) == 1:
            raise ConfigError(messages[0])
        raise ConfigError(f"{len(messages)} problems: " + "; ".join(messages))
    for section in ("actor", "simulator", "cameras", "indi", "alpaca"):
        if data.get(section) is None:
            data[section] = {}
    data.setdefault("backend", "simulator")
    for section in ("indi", "alpaca"):
        for key, spec in CONFIG_SCHEMA["properties"][section]["properties"].items():
            data[section].setdefault(key, thaw(spec["default"]))
    actor = data["actor"]
    for key, spec in CONFIG_SCHEMA["properties"]["actor"]["properties"].items():
        if key not in actor:
            actor[key] = thaw(spec["default"])
    actor["quicklook"] = {**thaw(QUICKLOOK_CONFIG["default"]), **actor["quicklook"]}
    actor["poll_interval"] = float(actor["poll_interval"])
    actor["port"] = int(actor["port"])  # 5672.0 is a JSON Schema integer
    actor["max_command_bytes"] = int(actor["max_command_bytes"])
    if actor["legacy"] is not None:
        actor["legacy"]["port"] = int(actor["legacy"]["port"])
    for key in PATH_KEYS:
        if actor[key] is not None:
            actor[key] = str(Path(actor[key]).expanduser())
    if actor["url"]:
        _check_url(actor["url"])
    _check_templates(actor)
    _check_camera_names(data)
    _check_default_cameras(data)
    return data


def _with_component(url: str, key: str, value: Any) -> str:
    """``url`` with one of host, port, user, password or virtualhost replaced."""
    parts = urlsplit(url)
    if key == "virtualhost":
        return urlunsplit(parts._replace(path="/" + quote(str(value), safe="")))
    fields = {
        "user": unquote(parts.username) if parts.username is not None else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "host": parts.hostname or "",
        "port": parts.port,
    }
    fields[key] = value
    host = fields["host"]
    netloc = f"[{host}]" if ":" in host else host
    if fields["port"] is not None:
        netloc += f":{fields['port']}"
    if fields["user"] is not None:
        userinfo = quote(fields["user"], safe="")
        if fields["password"] is not None:
            userinfo += ":" + quote(fields["password"], safe="")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def apply_overrides(
    config: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Returns a copy of ``config`` with ``actor`` keys overridden.

    `None` values are ignored. A ``url`` in ``overrides`` replaces the
    connection settings below it; a host, port, user, password or virtualhost
    in ``overrides`` also replaces that part of a ``url`` from below, so that
    each setting follows flags > environment > file.
    """
    data = copy.deepcopy(dict(config))
    actor = data.get("actor")
    if actor is not None and not isinstance(actor, Mapping):
        return data  # left for validate_config to report
    actor = dict(actor or {})
    values = {key: value for key, value in overrides.items() if value is not None}
    if "url" in values:
        actor["url"] = values.pop("url")
    elif isinstance(actor.get("url"), str) and actor["url"]:
        for key in ("host", "port", "user", "password", "virtualhost"):
            if key in values:
                actor["url"] = _with_component(actor["url"], key, values[key])
    actor.update(values)
    data["actor"] = actor
    return data


def apply_env(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Returns a copy of ``config`` with the `ENV_VARS` overrides applied.

    Parameters
    ----------
    config
        The configuration, validated or not.
    environ
        The environment; `os.environ` by default. Empty variables are ignored.

    Raises
    ------
    ConfigError
        If ``CAMACTOR_BROKER_PORT`` is not an integer.
    """
    environ = os.environ if environ is None else environ
    overrides: dict[str, Any] = {}
    for variable, key in ENV_VARS.items():
        value = environ.get(variable)
        if not value:
            continue
        if key == "port":
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(
                    f"{variable} (actor.port) must be an integer, not {value!r}"
                ) from None
        overrides[key] = value
    return apply_overrides(config, overrides)


def broker_kwargs(section: Mapping[str, Any]) -> dict[str, Any]:
    """The CLU connection arguments of a validated ``actor`` section.

    ``url`` wins over the separate host, port, user, password and virtual host.
    """
    if section.get("url"):
        return {"url": section["url"]}
    return {
        "host": section["host"],
        "port": section["port"],
        "user": section["user"],
        "password": section["password"],
        "virtualhost": section.get("virtualhost", "/"),
    }


def load_config(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Reads and validates a configuration file.

    Parameters
    ----------
    path
        The YAML file; `None` for the packaged ``etc/camactor.yml``.

    Returns
    -------
    config
        The normalised configuration (see `validate_config`). Environment and
        flag overrides are not applied: use `apply_env` and `apply_overrides`
        on the raw file, then `validate_config`, as the launcher does.

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or is invalid.
    """
    return validate_config(read_config(path))


def read_config(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Reads a configuration file without validating it (see `load_config`)."""
    path = default_config_path() if path is None else Path(path)
    try:
        raw = _read_yaml(path)
    except CameraError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(raw, Mapping):  # pragma: no cover - guarded by camera_core
        raise ConfigError(f"{path}: the configuration must be a mapping")
    return raw
