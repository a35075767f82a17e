"""``camactor recover``: write spooled frames to their targets, without a broker.

Frames whose target could not be written wait in a spool directory with a
JSON sidecar (see `camera_core.spool`). This subcommand recovers every spool
directory of the configuration (`spool_dirs`). Frames that a running actor
holds in memory (its spool was unwritable too) are only reachable through
the actor's own ``recover`` command.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from camera_core.config import default_spool_dir
from camera_core.spool import RecoverResult, recover

__all__ = ["describe", "recover_command", "spool_dirs"]


def spool_dirs(config: Mapping[str, Any]) -> list[Path]:
    """The spool directories of a configuration, without repeats.

    ``actor.spool_dir`` (the default spool, ``$XDG_STATE_HOME/camactor/spool``,
    when null), which cameras without their own use, and the ``spool_dir`` of
    every ``cameras`` entry.
    """
    section = config.get("actor") or {}
    main = section.get("spool_dir")
    dirs = [default_spool_dir() if main is None else Path(main)]
    for entry in (config.get("cameras") or {}).values():
        if isinstance(entry, Mapping) and entry.get("spool_dir") is not None:
            dirs.append(Path(entry["spool_dir"]))
    return list(dict.fromkeys(path.expanduser() for path in dirs))


def describe(result: RecoverResult) -> str:
    """One line about a recovered (or not) frame."""
    who = " ".join(str(x) for x in (result.camera, result.exposure_id) if x)
    where = str(result.spool_file) if result.spool_file is not None else "memory"
    home = result.target if result.path is None else result.path
    line = f"{who + ': ' if who else ''}{where} -> {home or '?'}"
    status = "recovered" if result.recovered else "NOT recovered"
    return f"{status}: {line}" + (f" ({result.error})" if result.error else "")


@click.command("recover")
@click.pass_obj
def recover_command(state: Any) -> None:
    """Write the spooled frames to their targets (no broker needed).

    Each spooled file's checksums are verified before it is copied, with its
    original header, to where it was meant to go. No file is replaced: when
    the target holds another file the frame goes next to it as
    <stem>-recovered-<N><suffix>. Exits with status 1 if a frame stays in the
    spool.
    """
    dirs = spool_dirs(state.config)
    results: list[RecoverResult] = []
    for directory in dirs:
        results.extend(recover(directory))
    listed = ", ".join(str(d) for d in dirs)
    if not results:
        click.echo(f"Nothing to recover in {listed}.")
        return
    for result in results:
        click.echo(describe(result), err=not result.recovered)
    done = sum(result.recovered for result in results)
    click.echo(f"Recovered {done} of {len(results)} frames from {listed}.")
    if done < len(results):
        raise click.ClickException(
            f"{len(results) - done} frame(s) stay in the spool: fix the reasons "
            "above (free space, permissions) and run `camactor recover` again."
        )
