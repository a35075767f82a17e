"""The JSON Schema of the camactor configuration (`CONFIG_SCHEMA`).

Each ``actor`` key carries its type, ``default`` and ``description``; the
README and the manual render their configuration tables from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .quicklook import QUICKLOOK_CONFIG

__all__ = ["CONFIG_SCHEMA", "PATH_KEYS", "freeze", "thaw"]

#: ``actor`` keys that are paths, expanded (``~``) by `validate_config`.
PATH_KEYS = ("data_dir", "log_dir", "pid_file", "spool_dir", "journal")

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}


def _server_section(description: str, port: int, **extra: Any) -> dict:
    """The schema of a device-server section (``indi:``, ``alpaca:``)."""
    return {
        "type": ["object", "null"],
        "additionalProperties": False,
        "description": description,
        "properties": {
            "host": {"type": "string", "minLength": 1, "default": "127.0.0.1"},
            "port": {**_PORT, "default": port},
            **extra,
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        },
    }


def _key(types: str | list[str], default: Any, description: str, **rules: Any) -> dict:
    """The schema of one ``actor`` key."""
    return {"type": types, "default": default, "description": description, **rules}


def freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of a `_freeze` result, as plain JSON types."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


_ACTOR_KEYS = {
    "name": _key(
        "string",
        "camactor",
        "Actor name: its AMQP queue and the sender of its replies.",
        pattern="^[A-Za-z][A-Za-z0-9_-]*$",
    ),
    "url": _key(
        ["string", "null"],
        None,
        "Broker URL (amqp:// or amqps://); overrides host, port, user, "
        "password and virtualhost.",
        pattern="^amqps?://",
    ),
    "host": _key("string", "127.0.0.1", "Broker host.", minLength=1),
    "port": _key(_PORT["type"], 5672, "Broker port.", **_PORT),
    "user": _key("string", "guest", "Broker user."),
    "password": _key("string", "guest", "Broker password (never logged)."),
    "virtualhost": _key("string", "/", "Broker virtual host."),
    "data_dir": _key("string", "~/camactor-data", "Root of the images.", minLength=1),
    "journal": _key(
        ["string", "null"],
        None,
        "Exposure journal (SQLite) file, on a local disk "
        "(null: journal.sqlite in data_dir).",
        minLength=1,
    ),
    "image_name": _key(
        "string",
        "{camera.name}-{num:04d}.fits",
        "Template of the image file names; must use {num}.",
        minLength=1,
    ),
    "image_dir": _key(
        "string",
        "{camera.name}/{int(date.mjd)}",
        "Template of the image directories, relative to data_dir.",
    ),
    "default_cameras": _key(
        "array",
        [],
        "Camera names or uids used when a command names none.",
        items={"type": "string", "minLength": 1},
        uniqueItems=True,
    ),
    "spool_dir": _key(
        ["string", "null"],
        None,
        "Spool of the frames whose target cannot be written, for cameras "
        "without their own spool_dir (null: $XDG_STATE_HOME/camactor/spool).",
        minLength=1,
    ),
    "log_dir": _key(
        ["string", "null"],
        "~/.camactor/logs",
        "Directory of the log files (null: no log files).",
        minLength=1,
    ),
    "pid_file": _key(
        "string", "~/.camactor/camactor.pid", "PID file of the daemon.", minLength=1
    ),
    "validate": _key("boolean", True, "Validate replies against the schema."),
    "max_command_bytes": _key(
        "integer", 65536, "Larger command bodies are refused.", minimum=1
    ),
    "write_queue": _key(
        "integer",
        2,
        "Images per camera written while the next is taken; more wait.",
        minimum=1,
    ),
    "poll_interval": _key(
        "number", 1.0, "Seconds between camera poller checks.", exclusiveMinimum=0
    ),
    "stop_timeout": _key(
        "number",
        60.0,
        "Seconds a stopping actor waits for frames still being written.",
        minimum=0,
    ),
    "quicklook": QUICKLOOK_CONFIG,
    "legacy": _key(
        ["object", "null"],
        None,
        "Also serve the commands on the Tron (legacy) TCP protocol at {host, port}.",
        additionalProperties=False,
        required=["host", "port"],
        properties={"host": {"type": "string", "minLength": 1}, "port": _PORT},
    ),
}

#: The JSON Schema of the configuration (read-only). Each ``actor`` property
#: carries its ``default`` and ``description``.
CONFIG_SCHEMA: Mapping[str, Any] = freeze(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "actor": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": _ACTOR_KEYS,
            },
            "backend": {
                "enum": ["simulator", "indi", "alpaca"],
                "default": "simulator",
                "description": "Which camera system drives the cameras.",
            },
            "simulator": {"type": ["object", "null"]},
            "indi": _server_section("INDI server of the indi backend.", 7624),
            "alpaca": _server_section(
                "Alpaca server of the alpaca backend.",
                11111,
                devices={
                    "type": ["array", "null"],
                    "items": {"type": "integer", "minimum": 0},
                    "default": None,
                },
            ),
            "cameras": {
                "type": ["object", "null"],
                "additionalProperties": {"type": ["object", "null"]},
            },
        },
    }
)
del _ACTOR_KEYS
