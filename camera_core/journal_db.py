"""The SQLite storage of the exposure journal (blocking; run off the event loop).

Two tables:

``phases``
    The append-only log: one row per event of an exposure (its phase, UTC time
    and every field it carried), never changed or deleted.
``exposures``
    One summary row per exposure (state, parameters, file, checksum, error),
    updated in the same transaction as each ``phases`` row, so that history
    queries and the search for exposures in flight stay fast however long the
    journal grows.

The database uses write-ahead logging with ``synchronous=FULL``: a committed
batch survives a crash of the process or of the machine, and a batch cut short
by a crash is rolled back as a whole.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "TERMINAL_STATES",
    "Entry",
    "apply_entries",
    "connect",
    "in_flight",
    "query_records",
    "read_history",
]

#: States after which an exposure is over, one way or another.
TERMINAL_STATES = frozenset({"written", "spooled", "failed", "aborted", "interrupted"})

#: Summary columns an entry may set.
_COLUMNS = ("request_id", "camera", "filename", "path", "datasum", "checksum")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exposures (
    exposure_id TEXT PRIMARY KEY,
    request_id TEXT,
    camera TEXT,
    state TEXT NOT NULL,
    terminal INTEGER NOT NULL DEFAULT 0,
    started TEXT NOT NULL,
    ended TEXT,
    parameters TEXT NOT NULL DEFAULT '{}',
    filename TEXT,
    path TEXT,
    datasum TEXT,
    checksum TEXT,
    spooled INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS exposures_request ON exposures (request_id);
CREATE INDEX IF NOT EXISTS exposures_terminal ON exposures (terminal);
CREATE INDEX IF NOT EXISTS exposures_camera ON exposures (camera);
CREATE TABLE IF NOT EXISTS phases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    exposure_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    time TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS phases_exposure ON phases (exposure_id, seq);
"""


class Entry(NamedTuple):
    """One event of an exposure, as appended to the journal.

    ``state`` is the exposure's new state, or `None` to keep it. ``fields``
    holds the summary columns to set (`_COLUMNS`, ``spooled``, ``error``),
    ``parameters`` to merge into the parameters, ``initial_parameters`` for an
    exposure seen for the first time, and anything else to keep in the
    ``phases`` row only.
    """

    exposure_id: str
    phase: str
    time: str
    state: str | None
    fields: dict[str, Any]


def connect(path: str | Path, read_only: bool = False) -> sqlite3.Connection:
    """Opens (and creates, unless ``read_only``) a journal database.

    Parameters
    ----------
    path
        The database file, or ``":memory:"``.
    read_only
        Open for reading only; the file must exist. In a directory that is
        read-only, where SQLite cannot create the ``-shm`` file it reads a
        WAL database through, the file is opened as immutable (nothing can
        change it there).
    """
    if read_only:
        file = Path(path).resolve()
        try:
            return _connected(file.as_uri() + "?mode=ro")
        except sqlite3.OperationalError:
            if os.access(file.parent, os.W_OK):
                raise
            return _connected(file.as_uri() + "?immutable=1")
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), timeout=10, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    return conn


def _connected(uri: str) -> sqlite3.Connection:
    """A read connection to ``uri`` that has read the schema (or raised)."""
    conn = sqlite3.connect(uri, uri=True, timeout=10, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def _apply(conn: sqlite3.Connection, entry: Entry) -> None:
    fields = entry.fields
    parameters = fields.get("parameters") or {}
    initial = {**(fields.get("initial_parameters") or {}), **parameters}
    inserted = conn.execute(
        "INSERT INTO exposures (exposure_id, state, started, parameters) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (exposure_id) DO NOTHING",
        (entry.exposure_id, entry.state or "exposing", entry.time, _json(initial)),
    ).rowcount
    sets: dict[str, Any] = {
        key: fields[key] for key in _COLUMNS if fields.get(key) is not None
    }
    if fields.get("spooled") is not None:
        sets["spooled"] = int(bool(fields["spooled"]))
    if entry.state is not None:
        terminal = entry.state in TERMINAL_STATES
        sets.update(
            state=entry.state,
            terminal=int(terminal),
            ended=entry.time if terminal else None,
            error=fields.get("error"),  # the error describes the current state
        )
    elif fields.get("error") is not None:
        sets["error"] = fields["error"]
    assignments = [f"{key} = ?" for key in sets]
    values = list(sets.values())
    if parameters and not inserted:  # (json_patch drops null values)
        assignments.append("parameters = json_patch(parameters, ?)")
        values.append(_json(parameters))
    if assignments:
        conn.execute(
            f"UPDATE exposures SET {', '.join(assignments)} WHERE exposure_id = ?",
            (*values, entry.exposure_id),
        )
    detail = {
        key: value
        for key, value in fields.items()
        if value is not None and key != "initial_parameters"
    }
    conn.execute(
        "INSERT INTO phases (exposure_id, phase, time, detail) VALUES (?, ?, ?, ?)",
        (entry.exposure_id, entry.phase, entry.time, _json(detail)),
    )


def apply_entries(conn: sqlite3.Connection, entries: Iterable[Entry]) -> None:
    """Appends entries in one transaction (all or none of them are kept)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for entry in entries:
            _apply(conn, entry)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _record(row: sqlite3.Row, phases: list[dict[str, Any]]) -> dict[str, Any]:
    spooled = row["spooled"]
    return {
        "exposure_id": row["exposure_id"],
        "request_id": row["request_id"],
        "camera": row["camera"],
        "state": row["state"],
        "started": row["started"],
        "ended": row["ended"],
        "parameters": json.loads(row["parameters"]),
        "filename": row["filename"],
        "path": row["path"],
        "datasum": row["datasum"],
        "checksum": row["checksum"],
        "spooled": None if spooled is None else bool(spooled),
        "error": row["error"],
        "phases": phases,
    }


def _phases(conn: sqlite3.Connection, ids: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {exposure_id: [] for exposure_id in ids}
    for start in range(0, len(ids), 500):  # stay under SQLite's variable limit
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT exposure_id, phase, time, detail FROM phases "
            f"WHERE exposure_id IN ({marks}) ORDER BY seq",
            chunk,
        )
        for row in rows:
            phase: dict[str, Any] = {"phase": row["phase"], "time": row["time"]}
            detail = json.loads(row["detail"])
            if (detail.get("stack_total") or 0) > 1 and detail.get("stack_n"):
                phase["frame"] = int(detail["stack_n"])
            found[row["exposure_id"]].append(phase)
    return found


def query_records(
    conn: sqlite3.Connection,
    camera: str | None = None,
    last: int | None = None,
    request_id: str | None = None,
    terminal: bool | None = None,
) -> list[dict[str, Any]]:
    """Exposure records, oldest first.

    Parameters
    ----------
    conn
        The journal database.
    camera
        Only the exposures of this camera.
    last
        Only the ``last`` most recent exposures.
    request_id
        Only the exposures of this client id (matching ``request_id`` or
        ``exposure_id``).
    terminal
        Only exposures that are over (`True`) or still in flight (`False`).
    """
    where, args = [], []
    if camera is not None:
        where.append("camera = ?")
        args.append(camera)
    if request_id is not None:
        where.append("(request_id = ? OR exposure_id = ?)")
        args.extend([request_id, request_id])
    if terminal is not None:
        where.append("terminal = ?")
        args.append(int(terminal))
    sql = "SELECT * FROM exposures"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY rowid DESC"
    if last is not None:
        sql += " LIMIT ?"
        args.append(int(last))
    rows = conn.execute(sql, args).fetchall()[::-1]
    phases = _phases(conn, [row["exposure_id"] for row in rows])
    return [_record(row, phases[row["exposure_id"]]) for row in rows]


def in_flight(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The exposures that never reached a terminal state, oldest first."""
    return query_records(conn, terminal=False)


def read_history(
    path: str | Path, camera: str | None = None, last: int | None = None
) -> list[dict[str, Any]]:
    """Reads exposure records from a journal file without changing it.

    Safe while an actor writes to the journal.

    Raises
    ------
    FileNotFoundError
        If there is no journal at ``path``.
    sqlite3.Error
        If the file is not a readable journal.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no exposure journal at {path}")
    conn = connect(path, read_only=True)
    try:
        return query_records(conn, camera=camera, last=last)
    finally:
        conn.close()
