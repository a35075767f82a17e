"""Reading the exposure journal without writing it (blocking; run off the loop).

A journal read must answer even when its disk cannot be written (full, or
read-only): the answer is what is committed with, on top, the entries still
waiting in memory for a retry. `read_merged` builds that answer by layers:

1. an optional read-only ``base`` database (the journal file of an actor that
   had to fall back to a journal in memory);
2. the journal's own database (``conn``);
3. the ``pending`` entries, applied (with `journal_db.apply_entries`, so
   exactly as a later commit will apply them) to a copy, in memory, of the
   records they touch.

A record of an upper layer replaces the record of the same exposure in the
layers below it, at that record's place; records only in an upper layer come
after every record below. `interruption` says why a record a crash left in
flight was interrupted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from .journal_db import Entry, apply_entries, connect, query_records

__all__ = ["interruption", "read_merged"]

#: Why an exposure in each state was interrupted.
_LOST = {
    "read": "after its frame was read and before it was written; the frame was lost",
    "writing": "while writing {filename}; check whether that file exists",
    "unsaved": "with the frame unsaved in memory ({error}); the frame was lost",
}

#: Exposure ids per ``IN (...)`` query: stay under SQLite's variable limit.
_CHUNK = 500


def interruption(record: dict[str, Any]) -> str:
    """Why an exposure still in flight in the journal was interrupted."""
    state = record["state"]
    phase = record["phases"][-1]["phase"] if record["phases"] else state
    why = _LOST.get(state, f"during {phase!r}; no frame was saved")
    why = why.format(filename=record["filename"], error=record["error"])
    return f"Interrupted: the process stopped {why}."


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _rowids(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, int]:
    """The row ids (their order) in ``conn`` of those of ``ids`` it holds."""
    found: dict[str, int] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT exposure_id, rowid FROM exposures WHERE exposure_id IN ({marks})",
            chunk,
        )
        found.update((row[0], row[1]) for row in rows)
    return found


def _overlay(conn: sqlite3.Connection, entries: list[Entry]) -> sqlite3.Connection:
    """A database in memory: the records ``entries`` touch, then the entries."""
    memory = connect(":memory:")
    ids = list(dict.fromkeys(entry.exposure_id for entry in entries))
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT * FROM exposures WHERE exposure_id IN ({marks}) ORDER BY rowid",
            chunk,
        ):
            names = ", ".join(row.keys())
            values = ", ".join("?" * len(row))
            memory.execute(f"INSERT INTO exposures ({names}) VALUES ({values})", row)
        memory.executemany(
            "INSERT INTO phases (exposure_id, phase, time, detail) VALUES (?, ?, ?, ?)",
            conn.execute(
                "SELECT exposure_id, phase, time, detail FROM phases "
                f"WHERE exposure_id IN ({marks}) ORDER BY seq",
                chunk,
            ).fetchall(),
        )
    apply_entries(memory, entries)
    return memory


def _merge(
    lower: sqlite3.Connection, upper: sqlite3.Connection, **query: Any
) -> list[dict[str, Any]]:
    """The records of ``lower`` with those of ``upper`` on top (see module)."""
    last = query.get("last")
    upper_ids = [row[0] for row in upper.execute("SELECT exposure_id FROM exposures")]
    shadowed = _rowids(lower, upper_ids)
    limit = None if last is None else last + len(shadowed)
    below = [
        record
        for record in query_records(lower, **{**query, "last": limit})
        if record["exposure_id"] not in shadowed
    ]
    keys = _rowids(lower, [record["exposure_id"] for record in below])
    top = lower.execute("SELECT max(rowid) FROM exposures").fetchone()[0] or 0
    ordered = [(keys[record["exposure_id"]], record) for record in below]
    for index, record in enumerate(query_records(upper, **query), start=1):
        ordered.append((shadowed.get(record["exposure_id"], top + index), record))
    ordered.sort(key=lambda item: item[0])
    records = [record for _, record in ordered]
    return records if last is None else records[len(records) - last :]


def read_merged(
    conn: sqlite3.Connection,
    pending: list[Entry],
    base: sqlite3.Connection | None = None,
    camera: str | None = None,
    last: int | None = None,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """Exposure records, oldest first, as if every layer were committed.

    Parameters
    ----------
    conn
        The journal database.
    pending
        Entries not committed to ``conn`` yet (waiting for a retry).
    base
        A read-only journal under ``conn`` (see the module), or `None`.
    camera, last, request_id
        As in `journal_db.query_records`.
    """
    query: dict[str, Any] = {"camera": camera, "last": last, "request_id": request_id}
    if base is None and not pending:
        return query_records(conn, **query)
    if base is None:
        overlay = _overlay(conn, pending)
        try:
            return _merge(conn, overlay, **query)
        finally:
            overlay.close()
    # A journal in memory over a file: its writes do not fail for lack of disk
    # space, so its pending entries were queued after this read was asked for.
    return _merge(base, conn, **query)
