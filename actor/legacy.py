"""The Tron (legacy TCP) interface of a camera actor.

`LegacyCameraActor` serves the same commands over CLU's legacy protocol: a
client connects to a TCP port and sends lines ``[<commander>] <id> <command>``
(for example ``APO.Craig 5 expose 0.1 --bias``); replies are lines
``<user> <id> <code> key=value; key=value``.

It runs beside the AMQP actor on the same `~camera_core.CameraSystem`, sharing
its cameras, running sequences, default cameras and exposure journal, so both
interfaces see the same state. The companion never starts the camera poller or
disconnects the cameras: the primary actor owns them.

Replies are validated against the same JSON Schema as on AMQP and then turned
into legacy values: an object becomes its values in order (nested ones
flattened), ``null`` becomes ``?``, booleans ``T``/``F``, and strings with
spaces or ``,;="'`` are quoted, so Tron-era keyword parsers read each keyword
as a list of values.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from typing import Any

from clu import CluWarning
from clu.legacy import LegacyActor

from .actor import BaseCameraActor

__all__ = ["LegacyCameraActor", "legacy_value"]

#: Characters that make a string ambiguous in a legacy keyword value.
_SPECIAL = frozenset(" ,;=\"'\t\n")

#: How a null value is written.
NULL = "?"


def legacy_value(value: Any) -> Any:
    """Turns a JSON keyword value into one CLU's legacy formatter can write.

    Parameters
    ----------
    value
        A keyword value as validated against the schema.

    Returns
    -------
    legacy
        A scalar or a flat list of scalars.
    """
    if isinstance(value, Mapping | list | tuple):
        flat: list[Any] = []
        _flatten(value, flat)
        return flat
    return _scalar(value)


def _flatten(value: Any, out: list[Any]) -> None:
    items = value.values() if isinstance(value, Mapping) else value
    for item in items:
        if isinstance(item, Mapping | list | tuple):
            _flatten(item, out)
        else:
            out.append(_scalar(item))


def _scalar(value: Any) -> Any:
    if value is None:
        return NULL
    if isinstance(value, str):
        if value == "" or any(char in _SPECIAL for char in value):
            return json.dumps(value)
        return value
    return value


class LegacyCameraActor(BaseCameraActor, LegacyActor):
    """A camera actor on CLU's legacy (Tron) TCP protocol.

    Parameters
    ----------
    primary
        The actor that owns the camera system; its state is shared.
    name
        Actor name shown to Tron.
    host, port
        Where the TCP server listens.
    kwargs
        Passed to `BaseCameraActor` and `~clu.legacy.LegacyActor`.
    """

    def __init__(
        self,
        primary: BaseCameraActor,
        name: str,
        host: str,
        port: int,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("command_parser", primary.parser)
        kwargs.setdefault("log", primary.log)  # one log for both interfaces
        super().__init__(primary.camera_system, name, host, port, **kwargs)
        self.primary = primary
        self.validate = primary.validate
        # One state for both interfaces (shared objects, not copies).
        self.sequences = primary.sequences
        self.default_cameras = primary.default_cameras
        self.poll_interval = primary.poll_interval
        self.write_queue = primary.write_queue
        if hasattr(primary, "journal"):
            self.journal = primary.journal

    @classmethod
    def beside(
        cls, primary: BaseCameraActor, config: Mapping[str, Any]
    ) -> LegacyCameraActor:
        """The legacy interface of ``config["actor"]["legacy"]`` for ``primary``.

        Parameters
        ----------
        primary
            The running (or about to run) AMQP actor.
        config
            The validated configuration; ``actor.legacy`` gives host and port.
        """
        section = config["actor"]
        legacy = section["legacy"]
        return cls(
            primary,
            section["name"],
            legacy["host"],
            int(legacy["port"]),
        )

    async def start(self, **kwargs: Any) -> LegacyCameraActor:
        """Starts the TCP server and the event keywords (not the poller)."""
        with warnings.catch_warnings():
            # Tron connects to us; there is no outgoing hub connection to make.
            warnings.filterwarnings("ignore", "starting LegacyActor", CluWarning)
            await LegacyActor.start(self, **kwargs)
        self.bridge.start()
        return self

    async def stop(self) -> None:
        """Stops the TCP server; the cameras stay with the primary actor."""
        await self.bridge.stop()
        await LegacyActor.stop(self)

    def _write_internal(self, reply: Any, *args: Any, **kwargs: Any) -> None:
        """Writes a reply in the legacy format (after schema validation)."""
        legacy = copy.copy(reply)
        legacy.message = {
            key: legacy_value(value) for key, value in reply.message.items()
        }
        super()._write_internal(legacy, *args, **kwargs)
