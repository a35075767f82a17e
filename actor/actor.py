"""The camera actor: a CameraSystem behind a CLU actor."""

from __future__ import annotations

import dataclasses
import shlex
from importlib.resources import files
from pathlib import Path
from typing import Any

import aio_pika
import click
from clu import Command
from clu.actor import AMQPActor, JSONActor

from camera_core import CameraSystem, __version__
from camera_core.simulator import SimulatedCameraSystem

from .amqp import ack_message, check_body, check_headers, reply_ids
from .bridge import EventBridge
from .cli_secrets import hide_secrets, redact_text
from .commands import build_parser
from .config import broker_kwargs
from .journaling import ActorJournal, journal_path
from .lifecycle import (
    DEFAULT_STOP_TIMEOUT,
    PendingWrites,
    finish_writes,
    report_unsaved,
)
from .outbox import ReplyOutbox, robust_url
from .quicklook import QuicklookSettings
from .validation import install_validator

__all__ = [
    "BaseCameraActor",
    "CameraActor",
    "JSONCameraActor",
    "Sequence",
    "build_camera_system",
    "default_schema_path",
]

#: Default largest accepted command body, in bytes.
MAX_COMMAND_BYTES = 64 * 1024


def default_schema_path() -> Path:
    """The packaged JSON Schema of the actor keywords."""
    return Path(str(files("camactor_schema").joinpath("camactor.json")))


@dataclasses.dataclass
class Sequence:
    """A ``expose --count`` sequence running on one camera."""

    total: int
    current: int = 0
    finish_requested: bool = False


class BaseCameraActor:
    """A camera actor, to be combined with a CLU actor class.

    Parameters
    ----------
    camera_system
        The camera system, already instantiated.
    default_cameras
        Camera names or UIDs used when a command names none.
    command_parser
        A `~clu.parsers.click.CluGroup` of commands. If `None`, a parser is
        built for this actor from the capabilities of its camera class.
    schema
        Path to the JSON Schema of the replies; ``"internal"`` uses the packaged
        one and `None` disables validation.
    max_command_bytes
        Larger command bodies are refused with an error.
    journal
        The exposure journal file (`actor.journaling`); `None` keeps it in
        memory.
    args, kwargs
        Passed to the CLU actor class.
    """

    def __init__(
        self,
        camera_system: CameraSystem,
        *args: Any,
        default_cameras: list[str] | str | None = None,
        command_parser: Any = None,
        schema: str | Path | None = "internal",
        max_command_bytes: int = MAX_COMMAND_BYTES,
        journal: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.camera_system = camera_system
        if schema == "internal":
            schema = default_schema_path()
        if schema is not None:
            kwargs["schema"] = str(schema)
        kwargs.setdefault("version", __version__)
        super().__init__(*args, **kwargs)
        hide_secrets(self.log)  # CLU logs its broker URL, password included
        if schema is not None and self.model is not None:
            install_validator(self.model)
        self.parser = (
            command_parser
            if command_parser is not None
            else build_parser(camera_system.camera_class)
        )
        self.max_command_bytes = max_command_bytes
        self.default_cameras: list[str] = []
        self.set_default_cameras(default_cameras)
        self.sequences: dict[str, Sequence] = {}
        self.bridge = EventBridge(self)
        self.journal = ActorJournal(journal)  # exposure journal (issue 6)
        self.poll_interval = 1.0
        #: Frames per camera written in the background while the next one is
        #: taken; more wait (backpressure) so memory stays bounded.
        self.write_queue = 2
        #: Root of the images; ``expose --filename`` must stay inside it (or
        #: inside the camera's image directory).
        self.data_dir: Path | None = None
        #: Statistics and PNG preview of each written frame (actor.quicklook).
        self.quicklook = QuicklookSettings()
        #: Frames ``expose`` writes in the background; `stop` waits for them.
        self.pending_writes = PendingWrites()
        self.stop_timeout = DEFAULT_STOP_TIMEOUT
        #: Frames saved nowhere when the actor stopped (logged at CRITICAL).
        self.unsaved_at_stop: list[Any] = []

    def __repr__(self) -> str:
        return redact_text(super().__repr__())

    def set_default_cameras(self, cameras: str | list[str] | None = None) -> None:
        """Sets the cameras used when a command names none.

        The list is changed in place: interfaces sharing it (see
        `actor.legacy.LegacyCameraActor`) all see the new defaults.
        """
        if cameras is None:
            names = []
        elif isinstance(cameras, str):
            names = [cameras]
        else:
            names = list(cameras)
        self.default_cameras[:] = names

    def new_sequence(self, camera_name: str, total: int) -> Sequence:
        """Registers an ``expose --count`` sequence running on a camera."""
        sequence = Sequence(total)
        self.sequences[camera_name] = sequence
        return sequence

    async def start(self, **kwargs: Any):
        """Starts the actor, the event bridge and the camera poller."""
        await super().start(**kwargs)
        await self.journal.start(self)  # reports exposures a crash interrupted
        self.bridge.start()
        await self.camera_system.start_camera_poller(self.poll_interval)
        return self

    async def stop(self) -> None:
        """Stops the actor without losing a frame silently (actor.lifecycle).

        Frames being written get up to `stop_timeout` seconds before the
        cameras stop; those saved nowhere are logged at CRITICAL and kept in
        `unsaved_at_stop`.
        """
        still_writing = await finish_writes(self, self.stop_timeout)
        await self.camera_system.disconnect()
        self.unsaved_at_stop = report_unsaved(self, still_writing, self.stop_timeout)
        await self.journal.stop()
        await self.bridge.stop()
        await self._stop_replies()
        await super().stop()

    async def _stop_replies(self) -> None:
        """Called just before the CLU actor stops; subclasses flush replies."""

    def parse_command(self, command: Command) -> Command:
        """Refuses empty and unparsable commands before CLU's parser sees them."""
        body = (command.body or "").strip()
        if not body:
            command.set_status(command.status.RUNNING, silent=True)
            command.fail(error="Empty command. Send 'help' to list the commands.")
            return command
        try:
            shlex.split(body)
        except ValueError as err:
            command.set_status(command.status.RUNNING, silent=True)
            command.fail(error=f"Cannot parse command {body!r}: {err}.")
            return command
        try:
            return super().parse_command(command)
        except Exception as err:  # CLU builds the click context outside its try
            if command.status.is_done:
                raise
            command.set_status(command.status.RUNNING, silent=True)
            first = body.split()[0]
            if first.startswith("-"):
                command.fail(
                    error=f"Cannot parse {body!r}: a command starts with its name, "
                    f"not an option ({first!r}). Send 'help' to list the commands."
                )
            else:
                self._handle_command_exception(command, err)
            return command

    def _handle_command_exception(self, command: Command, exception: Exception):
        """Fails unparsable commands with click's own reason in the error."""
        if isinstance(exception, click.ClickException) and not command.status.is_done:
            reason = exception.format_message()
            command.fail(
                error=f"Cannot parse {command.body!r}: {reason} "
                "Send 'help <command>' for its usage."
            )
            return
        return super()._handle_command_exception(command, exception)


class CameraActor(BaseCameraActor, AMQPActor):
    """A camera actor on RabbitMQ, replying with JSON keywords.

    Malformed messages (not JSON, no ``command_string``, too large) get a
    terminal ``f`` reply instead of being dropped.

    CLU binds every client's replies queue to ``reply.#``, so each one receives
    every reply on the bus. This actor never reads other actors' replies, so
    its queue only gets the replies to its own commands (``reply.<name>.#``).

    The connection is aio-pika's robust one: when the broker goes away it is
    retried every `reconnect_interval` seconds, and the exchange, both queues,
    their bindings (``reply.<name>.#`` included) and consumers are declared
    again once it is back. Replies written meanwhile wait, in order, in a
    `~actor.outbox.ReplyOutbox` and are published after the reconnection.
    """

    #: Seconds between reconnection attempts once the broker is lost
    #: (aio-pika's default is 5).
    reconnect_interval: float = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox = ReplyOutbox(self._publish_reply, self.log)

    async def start(self, **kwargs: Any):
        """Starts the actor with a replies queue that ignores the bus."""
        self.connection.url = robust_url(self.connection, self.reconnect_interval)
        await super().start(**kwargs)
        exchange = self.connection.exchange
        # The robust queue records these, and applies them again on reconnection.
        await self.replies_queue.bind(exchange, routing_key=f"reply.{self.name}.#")
        await self.replies_queue.unbind(exchange, routing_key="reply.#")
        connection = self.connection.connection
        connection.close_callbacks.add(self._broker_lost)
        connection.reconnect_callbacks.add(self._broker_back)
        self.outbox.start()
        return self

    async def _stop_replies(self) -> None:
        """Stops the outbox; replies the broker can no longer take are dropped."""
        connection = self.connection.connection
        if connection is not None:
            connection.close_callbacks.discard(self._broker_lost)
            connection.reconnect_callbacks.discard(self._broker_back)
        await self.outbox.stop()

    def _broker_lost(self, _connection: Any, error: BaseException | None) -> None:
        self.outbox.connection_lost(error)

    def _broker_back(self, _connection: Any) -> None:
        self.log.info(f"Reconnected to the broker; queues of {self.name} restored.")
        self.outbox.connection_restored()

    async def _write_internal(self, reply: Any, write_to_log: bool = True) -> None:
        """Publishes a reply through the outbox (kept while the broker is away).

        Replies are published as mandatory, so the broker returns those with no
        queue to go to (a commander that left, a broadcast with no client): they
        are dropped, except just after an outage (see `ReplyOutbox`).
        """
        await self.outbox.send(reply, write_to_log)

    async def _publish_reply(self, reply: Any, write_to_log: bool) -> None:
        await super()._write_internal(reply, write_to_log=write_to_log)

    async def new_command(
        self, message: aio_pika.abc.AbstractIncomingMessage, ack: bool = True
    ):
        """Runs a command message, or refuses it with an ``f`` reply.

        The message is acknowledged exactly once, before the command runs,
        whatever happens (`actor.amqp`): an unacknowledged one would stop the
        delivery of every later command. A ``task`` header never reaches CLU's
        task path (this actor has no tasks).
        """
        headers: dict[str, Any] = {}
        try:
            headers = dict(message.headers or {})
            error = check_headers(headers) or check_body(
                message.body, self.max_command_bytes
            )
        except Exception as err:  # never leave a message unacknowledged
            error = f"Command refused: unreadable message ({err!r})."
        finally:
            if ack:
                await ack_message(message, self.log)
        if error is None:
            return await super().new_command(message, ack=False)
        commander_id, command_id = reply_ids(headers)
        command = Command(
            "",
            command_id=command_id,
            commander_id=commander_id,
            consumer_id=self.name,
            actor=self,
        )
        command.set_status(command.status.RUNNING, silent=True)
        command.fail(error=error)
        self.log.warning(f"Refused command from {commander_id}: {error}")
        return command

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CameraActor:
        """Builds the actor and its camera system from a validated config.

        Parameters
        ----------
        config
            The configuration as returned by `actor.config.load_config`.
        """
        section = config["actor"]
        system = build_camera_system(config)
        connection = broker_kwargs(section)
        actor = cls(
            system,
            name=section["name"],
            default_cameras=section.get("default_cameras"),
            max_command_bytes=section.get("max_command_bytes", MAX_COMMAND_BYTES),
            journal=journal_path(config),
            log_dir=section.get("log_dir"),
            validate=section.get("validate", True),
            **connection,
        )
        actor.poll_interval = float(section.get("poll_interval", 1.0))
        actor.write_queue = int(section.get("write_queue", 2))
        actor.stop_timeout = float(section.get("stop_timeout", DEFAULT_STOP_TIMEOUT))
        if section.get("data_dir") is not None:
            actor.data_dir = Path(section["data_dir"]).expanduser()
        actor.quicklook = QuicklookSettings.from_config(
            section.get("quicklook"), actor.data_dir
        )
        return actor


class JSONCameraActor(BaseCameraActor, JSONActor):
    """A camera actor on a plain TCP socket, replying with JSON lines.

    Commands are lines of ``[<command_id>] <command string>``; useful as a device
    actor outside the message broker. Takes ``name``, ``host`` and ``port``.
    """


def build_camera_system(config: dict[str, Any]) -> CameraSystem:
    """Builds the camera system of a validated configuration.

    ``backend`` selects the simulator, an INDI server (``indi:`` section) or an
    ASCOM Alpaca server (``alpaca:`` section).

    Cameras without their own ``image_namer`` write to
    ``<data_dir>/<image_dir>/<image_name>`` from the ``actor`` section, and
    those without their own ``spool_dir`` spool to ``actor.spool_dir``.
    """
    section = config.get("actor", {})
    data_dir = str(Path(section.get("data_dir", "~/camactor-data")).expanduser())
    namer = {
        "basename": section.get("image_name", "{camera.name}-{num:04d}.fits"),
        "dirname": str(Path(data_dir) / section.get("image_dir", "{camera.name}")),
    }
    cameras = {}
    for name, entry in (config.get("cameras") or {}).items():
        entry = dict(entry or {})
        entry.setdefault("image_namer", namer)
        if section.get("spool_dir") is not None:
            entry.setdefault("spool_dir", section["spool_dir"])
        cameras[name] = entry
    system_config = {**config, "cameras": cameras}
    backend = config.get("backend", "simulator")
    if backend == "simulator":
        return SimulatedCameraSystem(camera_config=system_config)
    if backend == "indi":
        from camera_core.backends.indi import INDICameraSystem

        return INDICameraSystem(camera_config=system_config)
    if backend == "alpaca":
        from camera_core.backends.alpaca import AlpacaCameraSystem

        return AlpacaCameraSystem(camera_config=system_config)
    raise ValueError(f"Unknown backend {backend!r}; use simulator, indi or alpaca.")
