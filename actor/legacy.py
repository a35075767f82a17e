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
into legacy values: an object becomes its members in order, one value each (a
member that is an object or a list is one quoted JSON string, so positions
never move), ``null`` becomes ``?``, booleans ``T``/``F``, and strings with
spaces or ``,;="'`` are quoted, so Tron-era keyword parsers read each keyword
as a fixed list of values.
"""

from __future__ import annotations

import asyncio
import copy
import json
import warnings
from collections.abc import Mapping
from typing import Any

import clu
from clu import CluWarning
from clu.base import MessageCode
from clu.command import parse_legacy_command
from clu.legacy import LegacyActor
from clu.protocol import TCPStreamServer

from .actor import BaseCameraActor

__all__ = ["LegacyCameraActor", "legacy_value"]

#: Characters that make a string ambiguous in a legacy keyword value.
_SPECIAL = frozenset(" ,;=\"'\t\n")

#: How a null value is written.
NULL = "?"

#: Attributes the legacy interface takes from the actor it runs beside.
SHARED = (
    "validate",
    "sequences",
    "default_cameras",
    "poll_interval",
    "write_queue",
    "journal",
    "data_dir",
    "quicklook",
    "max_command_bytes",
    "pending_writes",
)


def legacy_value(value: Any) -> Any:
    """Turns a JSON keyword value into one CLU's legacy formatter can write.

    A keyword's value becomes a list of scalars with a fixed position for
    each member: an object gives its members in a fixed order, and a member
    that is itself an object or a list (free-form or of varying length) is
    one quoted JSON string, so later members never move.

    Parameters
    ----------
    value
        A keyword value as validated against the schema.

    Returns
    -------
    legacy
        A scalar or a list of scalars.
    """
    if isinstance(value, Mapping):
        return [_member(item) for item in value.values()]
    if isinstance(value, list | tuple):
        return [_member(item) for item in value]
    return _scalar(value)


def _member(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(json.dumps(value, ensure_ascii=False), ensure_ascii=False)
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if value is None:
        return NULL
    if isinstance(value, str):
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            return value  # already quoted (CLU's own keywords)
        if value == "" or any(char in _SPECIAL for char in value):
            return json.dumps(value, ensure_ascii=False)
        return value
    return value


#: Longest line read from a legacy client, in bytes; a longer one closes the
#: connection (shorter ones over ``max_command_bytes`` get an ``f`` reply).
LINE_LIMIT = 1 << 20


class LineServer(TCPStreamServer):
    """CLU's TCP server with a bounded line length that never kills a session.

    CLU reads lines with asyncio's default 64 KiB limit and lets the overrun
    error escape, which silently drops the client but keeps it as a user. Here
    lines up to `LINE_LIMIT` are read; a longer one gets an error line and a
    clean close, and the user is removed.
    """

    async def start(self) -> asyncio.AbstractServer:
        """Starts the server with the larger line limit."""
        self._server = await asyncio.start_server(
            self.connection_made, self.host, self.port, limit=LINE_LIMIT
        )
        return self._server

    async def connection_made(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serves one client; an over-long line ends its session cleanly."""
        try:
            await super().connection_made(reader, writer)
        except (asyncio.LimitOverrunError, ValueError):
            self.transports.pop(writer.transport, None)
            writer.write(
                f'0 0 f error="Line over {LINE_LIMIT} bytes; closing the '
                'connection."\n'.encode()
            )
            writer.close()
            if self.connection_callback:
                await self._do_callback(self.connection_callback, writer.transport)


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
        self._server = LineServer(
            host,
            port,
            connection_callback=self.new_user,
            data_received_callback=self.new_command,
        )
        # One state and one set of settings for both interfaces (the same
        # objects, not copies).
        for name in SHARED:
            setattr(self, name, getattr(primary, name))

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

    def new_command(self, transport: Any, command_str: bytes) -> Any:
        """Refuses commands over ``max_command_bytes``, then runs the rest."""
        if len(command_str) > self.max_command_bytes:
            error = (
                f"Command refused: {len(command_str)} bytes is over the "
                f"{self.max_command_bytes}-byte limit."
            )
            try:
                _, command_id, _ = parse_legacy_command(command_str.decode())
            except (clu.CommandError, UnicodeDecodeError):
                command_id = 0
            line = self.format_user_output(
                getattr(transport, "user_id", 0), command_id or 0,
                MessageCode.FAILED, f"error={json.dumps(error)}",
            )  # fmt: skip
            transport.write((line + "\n").encode())  # to this client only
            self.log.warning(error)
            return None
        return super().new_command(transport, command_str)

    def _write_internal(self, reply: Any, *args: Any, **kwargs: Any) -> None:
        """Writes a reply in the legacy format (after schema validation)."""
        legacy = copy.copy(reply)
        legacy.message = {
            key: legacy_value(value) for key, value in reply.message.items()
        }
        super()._write_internal(legacy, *args, **kwargs)
