"""Running the actor in the foreground or as a daemon with a pid file.

Daemonisation is `sdsstools.daemonizer.DaemonGroup` (daemonocle underneath);
`ActorDaemonGroup` only takes the pid file, process name and log file from the
validated configuration, and adds the ``run`` subcommand and ``--foreground``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click
from sdsstools.daemonizer import DaemonGroup

from .cli_secrets import RedactingFilter, redacted
from .lifecycle import DEFAULT_STOP_TIMEOUT

__all__ = [
    "EXIT_UNSAVED",
    "ActorDaemonGroup",
    "CliState",
    "ConfigUsageError",
    "broker_address",
    "preflight",
    "run_actor",
    "run_in_foreground",
    "serve",
]

log = logging.getLogger("camactor")

#: Seconds ``stop`` waits for the daemon to exit after SIGTERM: longer than
#: the actor waits for the frames still being written (actor.lifecycle).
STOP_TIMEOUT = DEFAULT_STOP_TIMEOUT + 15.0

#: Exit status of an actor that stopped with frames saved nowhere.
EXIT_UNSAVED = 3


@dataclasses.dataclass
class CliState:
    """What the ``camactor`` group hands to its subcommands.

    Attributes
    ----------
    config_path
        The configuration file that was read.
    config
        The validated configuration, with environment and flag overrides.
    verbose
        How many ``-v`` were given.
    """

    config_path: Path
    config: dict[str, Any]
    verbose: int = 0


class ConfigUsageError(click.ClickException):
    """An invalid configuration: ``Error: <message>`` and exit status 2."""

    exit_code = 2


def preflight(config: dict[str, Any], listen: bool = False) -> None:
    """Builds the camera system once, so that camera_core's checks of the
    ``cameras`` and ``simulator`` sections fail before the daemon detaches.

    Parameters
    ----------
    config
        The validated configuration.
    listen
        Also check that the Tron (legacy) port, if configured, is free; for
        commands that start an actor.

    Raises
    ------
    ConfigUsageError
        If camera_core refuses the configuration or the port is taken.
    """
    from camera_core.exceptions import CameraError

    from .actor import build_camera_system

    try:
        build_camera_system(config)
    except (CameraError, ValueError, TypeError) as err:
        raise ConfigUsageError(f"invalid camera configuration: {err}") from None
    legacy = config["actor"].get("legacy")
    if listen and legacy is not None:
        check_port(legacy["host"], int(legacy["port"]))


def check_port(host: str, port: int) -> None:
    """Raises `ConfigUsageError` if a TCP server cannot listen on host:port."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except OSError as err:
        raise ConfigUsageError(
            f"actor.legacy: cannot listen on {host}:{port} "
            f"({err.strerror or err}); free the port or change actor.legacy."
        ) from None


def setup_logging(verbose: int) -> None:
    """Logs to stderr at WARNING, INFO (-v) or DEBUG (-vv), hiding passwords.

    Adds a handler only if the root logger has none, so calling it again (or
    in a process that already logs) just changes the level.
    """
    root = logging.getLogger()
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)


def broker_address(config: dict[str, Any]) -> str:
    """The broker the actor connects to, as a URL without its password."""
    section = config["actor"]
    if section["url"]:
        return redacted(section["url"])
    return f"amqp://{section['user']}@{section['host']}:{section['port']}"


async def serve(config: dict[str, Any]) -> int:
    """Runs the camera actor until SIGINT or SIGTERM, then stops it.

    Stopping waits for the frames still being written (see
    `actor.actor.BaseCameraActor.stop`).

    Parameters
    ----------
    config
        The validated configuration.

    Returns
    -------
    status
        The exit status: 0 if stopped by a signal with every frame saved,
        1 if the broker connection closed on its own, `EXIT_UNSAVED` if
        frames were saved nowhere (each logged at CRITICAL).
    """
    from .actor import CameraActor
    from .legacy import LegacyCameraActor

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    name = config["actor"]["name"]
    log.info("Configuration: %s", redacted(config["actor"]))
    actor = CameraActor.from_config(config)
    actor.log.addFilter(RedactingFilter())  # CLU logs its broker URL
    legacy = None
    exit_status = 1
    try:
        await actor.start()
        log.info("Actor %s running on %s.", name, broker_address(config))
        if config["actor"].get("legacy") is not None:
            legacy = await LegacyCameraActor.beside(actor, config).start()
            log.info("Legacy (Tron) interface on %s:%s.", legacy.host, legacy.port)
        await actor.run_forever()
        log.warning("Actor %s: the broker connection closed.", name)
    except asyncio.CancelledError:
        exit_status = 0
        log.info("Actor %s: stopping on a signal.", name)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a 2nd signal: say why
            loop.add_signal_handler(sig, _already_stopping, actor)
        try:
            if legacy is not None:
                await legacy.stop()
            await actor.stop()
        except Exception:
            log.exception("Actor %s did not stop cleanly.", name)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if actor.unsaved_at_stop:
        log.critical(
            "Actor %s stopped with %d frame(s) saved nowhere (see above).",
            name,
            len(actor.unsaved_at_stop),
        )
        return EXIT_UNSAVED
    return exit_status


def _already_stopping(actor: Any) -> None:
    log.warning(
        "Actor %s is already stopping: it waits up to %g s for %d frame(s) "
        "still being written; SIGKILL abandons them.",
        actor.name,
        actor.stop_timeout,
        len(actor.pending_writes),
    )


def run_actor(state: CliState, daemon: bool = False) -> None:
    """Runs `serve` to completion; exits non-zero on failure.

    The exit status is 1 if the actor failed or the broker connection closed,
    `EXIT_UNSAVED` if it stopped with frames saved nowhere.

    Parameters
    ----------
    state
        The launcher state, with the validated configuration.
    daemon
        Whether this runs inside the daemon, whose stderr is the log file.
    """
    setup_logging(max(state.verbose, 1))
    name = state.config["actor"]["name"]
    if not daemon:
        click.echo(
            f"Actor {name} on {broker_address(state.config)} "
            "(Ctrl-C or SIGTERM to stop).",
            err=True,
        )
    try:
        exit_status = asyncio.run(serve(state.config))
    except Exception as err:
        if isinstance(err, ConnectionError):  # no traceback for a broker error
            log.error("Actor %s failed: %s", name, err)
        else:
            log.exception("Actor %s failed.", name)
        if not daemon:
            click.echo(f"Error: actor {name} failed: {err}", err=True)
        sys.exit(1)
    if exit_status != 0:
        sys.exit(exit_status)


@click.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Report whether the daemon is running (exit 0) or not (exit 1)."""
    daemon = ctx.parent.command.daemon
    info = daemon.get_status(fields=("pid", "uptime"))
    if info.get("pid") is None:
        click.echo(f"{daemon.name} is not running (pid file {daemon.pid_file}).")
        ctx.exit(1)
    click.echo(
        f"{daemon.name} is running with pid {info['pid']} "
        f"(up {info['uptime']:.0f} s, pid file {daemon.pid_file})."
    )


def run_in_foreground(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Callback of the eager ``--foreground`` flag: runs the actor, then exits."""
    if not value or ctx.resilient_parsing:
        return
    state = ctx.find_object(CliState)
    preflight(state.config, listen=True)
    run_actor(state)
    ctx.exit(0)


@click.command()
@click.pass_obj
def run(state: CliState) -> None:
    """Run the actor in the foreground (same as --foreground)."""
    run_actor(state)


class ActorDaemonGroup(DaemonGroup):
    """A `DaemonGroup` configured from the validated configuration.

    The daemon is named after the actor, uses ``actor.pid_file`` and appends
    its stdout and stderr to ``<log_dir>/<name>-daemon.log``. The group also accepts
    ``--foreground`` (with no subcommand) and ``run``, which run the actor
    without detaching (give the group a ``--foreground`` option with
    `run_in_foreground` as its callback), and its ``status`` prints the pid.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prog", "camactor")
        kwargs.setdefault("stop_timeout", STOP_TIMEOUT)
        super().__init__(*args, **kwargs)
        self.add_command(status)  # replaces daemonocle's
        self.add_command(run)

    @property
    def pid_file(self) -> str | None:
        """The daemon's pid file (``start --pid_file`` sets it)."""
        return self.daemon.pid_file

    @pid_file.setter
    def pid_file(self, value: str) -> None:
        self.daemon.pid_file = os.path.realpath(os.path.expanduser(value))

    def configure(self, state: CliState) -> None:
        """Takes the daemon settings from the validated configuration."""
        section = state.config["actor"]
        self.daemon.name = section["name"]
        self.pid_file = section["pid_file"]
        self.daemon.work_dir = os.getcwd()
        self.daemon.detach = os.getpid() != 1  # ``start`` always detaches
        # ``stop`` waits for the actor's own wait for frames being written.
        self.daemon.stop_timeout = float(section["stop_timeout"]) + 15.0
        # The daemon's stdout and stderr, for start and restart alike.
        log_dir = section["log_dir"]
        output = None
        if log_dir is not None:
            output = os.path.realpath(Path(log_dir) / f"{section['name']}-daemon.log")
        self.daemon.stdout_file = self.daemon.stderr_file = output

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), "run"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        state = ctx.find_object(CliState)
        if state is not None:
            self.configure(state)
            if cmd_name in ("start", "restart", "run"):
                # A restart finds the port held by the actor it replaces.
                preflight(state.config, listen=cmd_name != "restart")
        if cmd_name == "run":
            return self.commands["run"]
        return super().get_command(ctx, cmd_name)
