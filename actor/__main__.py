"""The ``camactor`` command-line launcher.

Settings come, highest first, from the flags of the ``camactor`` group, the
environment variables of `actor.config.ENV_VARS`, the configuration file and
the defaults of `actor.config.CONFIG_SCHEMA`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import click

from camera_core.config import default_config_path
from camera_core.utils import maybe_await

from .cli_expose import expose_command
from .cli_history import history_command
from .cli_ping import ping_command
from .cli_recover import recover_command
from .cli_status import status_command
from .config import (
    ConfigError,
    apply_env,
    apply_overrides,
    read_config,
    validate_config,
)
from .daemon import (
    ActorDaemonGroup,
    CliState,
    ConfigUsageError,
    preflight,
    run_actor,
    run_in_foreground,
    setup_logging,
)
from .demo import run_demo


def build_state(
    config: Path | None, verbose: int, overrides: dict[str, Any]
) -> CliState:
    """Reads the configuration and applies the environment and the flags.

    Raises
    ------
    ConfigUsageError
        If the file cannot be read or the result is invalid.
    """
    path = config if config is not None else default_config_path()
    try:
        raw = read_config(path)
    except ConfigError as err:
        raise ConfigUsageError(str(err)) from None
    try:
        validate_config(raw)
    except ConfigError as err:
        raise ConfigUsageError(f"{path}: {err}") from None
    try:
        validated = validate_config(
            apply_overrides(apply_env(raw, os.environ), overrides)
        )
    except ConfigError as err:
        raise ConfigUsageError(f"{err} (from the environment or options)") from None
    return CliState(config_path=path, config=validated, verbose=verbose)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: the packaged etc/camactor.yml).",
)
@click.option("-v", "--verbose", count=True, help="More logging (repeatable).")
@click.option(
    "--url",
    metavar="URL",
    help="Broker URL, amqp://user:password@host:port/vhost "
    "(env CAMACTOR_BROKER_URL); overrides the other broker settings.",
)
@click.option("--host", help="Broker host (env CAMACTOR_BROKER_HOST).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Broker port (env CAMACTOR_BROKER_PORT).",
)
@click.option(
    "--user",
    help="Broker user (env CAMACTOR_BROKER_USER). Give the password with "
    "CAMACTOR_BROKER_PASSWORD or the config file, never on the command line.",
)
@click.option("--name", help="Actor name (actor.name; env CAMACTOR_NAME).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Root directory of the images (actor.data_dir; env CAMACTOR_DATA_DIR).",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False),
    help="Directory of the log files (actor.log_dir).",
)
@click.option(
    "--pid-file",
    type=click.Path(dir_okay=False),
    help="PID file of the daemon (actor.pid_file).",
)
@click.pass_context
def camactor(
    ctx: click.Context, config: Path | None, verbose: int, **overrides: Any
) -> None:
    """camactor: turn astronomical cameras into CLU actors on RabbitMQ."""
    setup_logging(verbose)
    ctx.obj = build_state(config, verbose, overrides)


@camactor.group(cls=ActorDaemonGroup, prog="camactor")
@click.option(
    "--foreground",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=run_in_foreground,
    help="Run the actor in the foreground (same as `run`).",
)
def actor() -> None:
    """Run the actor as a daemon (start/stop/restart/status) or in the foreground."""
    # The daemon's worker: runs inside the detached process.
    run_actor(click.get_current_context().find_object(CliState), daemon=True)


@camactor.command()
@click.option("--exptime", type=float, default=1.0, show_default=True)
@click.option(
    "--count", type=int, default=None, help="Frames per camera (default: forever)."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write frames (default: where the actor would write them).",
)
@click.pass_obj
def demo(
    state: CliState, exptime: float, count: int | None, data_dir: Path | None
) -> None:
    """Expose the configured simulated cameras in the foreground, writing FITS."""

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await run_demo(state.config, exptime, count, data_dir, click.echo)
        except asyncio.CancelledError:
            click.echo("Stopped.")

    asyncio.run(main())


async def survey_cameras(config: dict[str, Any], timeout: float) -> list[list[str]]:
    """Builds the camera system and lets its poller connect the cameras.

    Waits until every available camera is connected or ``timeout`` passes.

    Returns
    -------
    rows
        Name, uid, configured, available and connected (``yes``/``no``) of
        every camera configured, available or in the system.
    """
    from .actor import build_camera_system

    system = build_camera_system(config)
    loop = asyncio.get_running_loop()
    try:
        available = [
            str(uid) for uid in await maybe_await(system.list_available_cameras())
        ]
        await system.start_camera_poller(
            interval=min(config["actor"]["poll_interval"], 0.1)
        )
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            cameras = [system.get_camera(uid=uid) for uid in available]
            if all(camera and camera.connected for camera in cameras):
                break
            await asyncio.sleep(0.05)
        entries: dict[str, str] = {}  # uid -> name
        for name, entry in config["cameras"].items():
            entries[str((entry or {}).get("uid", name))] = name
        for camera in system.cameras:
            entries.setdefault(str(camera.uid), camera.name)
        for uid in available:
            entries.setdefault(uid, uid)
        configured = set(config["cameras"])

        def yes(flag: bool) -> str:
            return "yes" if flag else "no"

        rows = []
        for uid, name in entries.items():
            camera = system.get_camera(uid=uid)
            rows.append(
                [
                    name,
                    uid,
                    yes(name in configured),
                    yes(uid in available),
                    yes(bool(camera and camera.connected)),
                ]
            )
        return rows
    finally:
        await system.disconnect()


@camactor.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the available cameras to connect.",
)
@click.pass_obj
def cameras(state: CliState, timeout: float) -> None:
    """List the cameras the config and the camera poller see (no broker)."""
    preflight(state.config)
    rows = asyncio.run(survey_cameras(state.config, timeout))
    header = ["NAME", "UID", "CONFIGURED", "AVAILABLE", "CONNECTED"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                cell.ljust(w) for cell, w in zip(row, widths, strict=True)
            ).rstrip()
        )


camactor.add_command(recover_command)
camactor.add_command(history_command)
camactor.add_command(ping_command)
camactor.add_command(expose_command)
camactor.add_command(status_command)


def main() -> None:
    """Entry point of the ``camactor`` console script."""
    camactor(prog_name="camactor")


if __name__ == "__main__":
    main()
