"""The ``camactor`` command-line launcher."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from camera_core.config import default_config_path

from .demo import run_demo


@click.group()
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: the packaged etc/camactor.yml).",
)
@click.option("-v", "--verbose", count=True, help="More logging (repeatable).")
@click.pass_context
def camactor(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """camactor: turn astronomical cameras into CLU actors."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    ctx.obj = {"config": config if config is not None else default_config_path()}


@camactor.command()
@click.option("--exptime", type=float, default=1.0, show_default=True)
@click.option(
    "--count", type=int, default=None, help="Frames per camera (default: forever)."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write frames (default: each camera's image namer).",
)
@click.pass_context
def demo(
    ctx: click.Context, exptime: float, count: int | None, data_dir: Path | None
) -> None:
    """Expose the configured simulated cameras in the foreground, writing FITS."""
    config: Path = ctx.obj["config"]

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await run_demo(config, exptime, count, data_dir, click.echo)
        except asyncio.CancelledError:
            click.echo("Stopped.")

    asyncio.run(main())


def main() -> None:
    """Entry point of the ``camactor`` console script."""
    camactor(prog_name="camactor")


if __name__ == "__main__":
    main()
