"""``camactor history``: the exposure journal, read directly (no broker).

Reads the journal file of the configuration (``actor.journal``, by default
``<data_dir>/journal.sqlite``) without changing it, so it also works while the
actor runs, or after it died.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import click

from camera_core.journal_db import read_history

from .daemon import CliState
from .journaling import journal_path

__all__ = ["format_table", "history_command"]

_COLUMNS = ["STARTED (UTC)", "EXPOSURE_ID", "CAMERA", "TYPE", "EXPTIME", "STATE"]


def _row(record: dict[str, Any]) -> list[str]:
    parameters = record["parameters"]
    exptime = parameters.get("exptime")
    started = (record["started"] or "").replace("T", " ")[:19]
    if record["state"] in ("written", "spooled"):
        outcome = record["path"] or ""
    else:
        outcome = record["error"] or ""
    return [
        started,
        record["exposure_id"],
        record["camera"] or "?",
        str(parameters.get("image_type") or "?"),
        "?" if exptime is None else f"{exptime:g}",
        record["state"],
        outcome,
    ]


def format_table(records: list[dict[str, Any]]) -> list[str]:
    """Aligned lines: one header and one line per record, file or error last."""
    rows = [[*_COLUMNS, "FILE / ERROR"], *(_row(record) for record in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


@click.command("history")
@click.option("--camera", default=None, help="Only this camera's exposures.")
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many of the most recent exposures.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Full records (phases, checksums), one JSON object per line.",
)
@click.pass_obj
def history_command(
    state: CliState, camera: str | None, last: int, as_json: bool
) -> None:
    """Show the last exposures from the exposure journal (no broker needed)."""
    path = journal_path(state.config)
    try:
        records = read_history(path, camera=camera, last=last)
    except FileNotFoundError:
        raise click.ClickException(
            f"no exposure journal at {path}; the actor has not run with this "
            "configuration (check actor.data_dir and actor.journal)."
        ) from None
    except sqlite3.Error as err:
        raise click.ClickException(f"cannot read the journal {path}: {err}") from None
    if as_json:
        for record in records:
            click.echo(json.dumps(record))
        return
    if not records:
        where = f" of camera {camera}" if camera is not None else ""
        click.echo(f"No exposures{where} in {path}.")
        return
    for line in format_table(records):
        click.echo(line)
