"""The exposure journal: an append-only, crash-safe record of every exposure.

`ExposureJournal` records each exposure's parameters, phases (with UTC
timestamps), file, checksum and error in a SQLite database
(`camera_core.journal_db`). Attached to a camera system's notifier it follows
every exposure from its camera events; callers add what events cannot tell
(the request, a frame that could not be saved).

All database work runs on one dedicated thread, in the order it was asked for;
entries queued while a batch is written are committed together in the next
one (group commit), so the journal never blocks the event loop and keeps up
with any frame rate. When the journal is opened, exposures that were in flight
when the previous process died are marked ``interrupted`` and returned, once.
Reads never need the disk: they merge entries still waiting for a retry
(`camera_core.journal_read`).

Example
-------
::

    journal = ExposureJournal("/data/journal.sqlite")
    interrupted = await journal.open()
    journal.attach(camera_system.notifier)
    ...
    print(await journal.history(camera="sim1", last=10))
    await journal.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import fcntl
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import IO, Any

from .journal_db import TERMINAL_STATES, Entry, apply_entries, connect, in_flight
from .journal_events import EVENT_ENTRIES, event_entry
from .journal_read import interruption, read_merged
from .notifier import EventListener, EventNotifier

__all__ = ["EVENT_ENTRIES", "TERMINAL_STATES", "ExposureJournal", "JournalError"]

log = logging.getLogger(__name__)

#: Entries kept for a retry while the database cannot be written.
MAX_PENDING = 100_000


class JournalError(RuntimeError):
    """The journal cannot be opened or written; the message says why."""


def utc_now() -> str:
    """The current UTC time in ISO 8601, to the millisecond."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _JournalListener(EventListener):
    """Hands each event to the journal the moment it is notified.

    No queue hop: entries keep the exact order of the events and of the
    journal calls made between them.
    """

    def __init__(self, journal: ExposureJournal) -> None:
        super().__init__(autostart=False)
        self.journal = journal

    def put_event(self, event: Any, payload: dict[str, Any]) -> None:
        # Called inside the camera's notify: a journal bug must not break
        # the exposure.
        try:
            self.journal.record_event(event, payload)
        except Exception:
            log.exception("Journal: could not record %s.", event)


class ExposureJournal:
    """An append-only journal of exposures in a SQLite file.

    Parameters
    ----------
    path
        The database file, created if needed; `None` keeps the journal in
        memory (this process only). A file journal is locked while open: a
        second journal on the same file refuses to open.
    base
        A journal file read, never written, under this journal's records: the
        history of a journal in memory standing in for a file that cannot be
        written (e.g. in a read-only directory).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        base: str | os.PathLike | None = None,
    ) -> None:
        self.path = None if path is None else Path(path).expanduser()
        self.base = None if base is None else Path(base).expanduser()
        self._base: sqlite3.Connection | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="journal"
        )
        self._lock = threading.Lock()
        self._pending: list[Entry] = []
        self._batch: concurrent.futures.Future | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._open_future: concurrent.futures.Future | None = None
        self._listeners: dict[int, tuple[EventNotifier, _JournalListener]] = {}
        self._closed = False
        #: The last error writing the database, or `None` once a write worked.
        self.error: str | None = None

    # Writing ----------------------------------------------------------------

    def append(
        self, exposure_id: str, phase: str, state: str | None = None, **fields: Any
    ) -> None:
        """Queues an event of an exposure for the journal (never blocks).

        Parameters
        ----------
        exposure_id
            The exposure.
        phase
            What happened (``requested``, ``flushing``, ``written``, ...).
        state
            The exposure's new state, or `None` to keep it.
        fields
            ``request_id``, ``camera``, ``filename``, ``path``, ``datasum``,
            ``checksum``, ``spooled``, ``error`` update the summary;
            ``parameters`` (a mapping) is merged into the parameters; anything
            else is kept with the phase.
        """
        if self._closed:
            log.warning("Journal closed; %s of %s not recorded.", phase, exposure_id)
            return
        entry = Entry(str(exposure_id), phase, utc_now(), state, fields)
        with self._lock:
            self._open_locked()  # the open job runs before any batch
            self._pending.append(entry)
            if len(self._pending) > MAX_PENDING:
                del self._pending[0]
                log.error("Journal backlog full: the oldest entry was dropped.")
            if self._batch is None:
                self._batch = self._executor.submit(self._write_pending)

    def requested(
        self,
        exposure_id: str,
        camera: str,
        parameters: dict[str, Any],
        request_id: str | None = None,
    ) -> None:
        """Records an exposure about to be taken, with its parameters."""
        self.append(
            exposure_id,
            "requested",
            "requested",
            camera=camera,
            request_id=request_id,
            parameters=parameters,
        )

    def record_event(self, event: Any, payload: dict[str, Any]) -> None:
        """Records a camera event (`EVENT_ENTRIES`); other events are ignored."""
        entry = event_entry(event, payload)
        if entry is not None:
            exposure_id, phase, state, fields = entry
            self.append(exposure_id, phase, state, **fields)

    def attach(self, notifier: EventNotifier) -> None:
        """Records the exposure events of a camera system's notifier."""
        if id(notifier) in self._listeners:
            return
        listener = _JournalListener(self)
        notifier.register_listener(listener)
        self._listeners[id(notifier)] = (notifier, listener)

    def detach(self, notifier: EventNotifier | None = None) -> None:
        """Stops recording the events of one notifier, or of all."""
        for key, (known, listener) in list(self._listeners.items()):
            if notifier is None or known is notifier:
                known.remove_listener(listener)
                del self._listeners[key]

    async def flush(self) -> None:
        """Waits until every entry queued so far is committed to disk.

        Raises
        ------
        JournalError
            If the database could not be written (the entries are kept and
            written with the next batch).
        """
        await self._run(lambda conn: None)

    async def retract(self, exposure_id: str) -> bool:
        """Forgets the entries of an exposure not committed yet.

        For an exposure that will not be taken because its ``requested``
        entry could not be committed. Returns whether the exposure is now
        absent from the journal (`False`: some entries were committed).
        """
        await self.open()

        def job() -> bool:
            with self._lock:
                kept = [e for e in self._pending if e.exposure_id != exposure_id]
                self._pending = kept
            if self._conn is None:
                return True
            return not read_merged(self._conn, [], request_id=exposure_id)

        return await asyncio.wrap_future(self._executor.submit(job))

    # Reading ----------------------------------------------------------------

    async def open(self) -> list[dict[str, Any]]:
        """Opens the journal; returns the exposures interrupted by a crash.

        Exposures that never reached a terminal state (the previous process
        died during them) are marked ``interrupted``, so each is reported by
        one `open` only. Calling `open` again returns the same list.

        Raises
        ------
        JournalError
            If the file cannot be created, locked or read.
        """
        with self._lock:
            future = self._open_locked()
        # Shielded: a cancelled caller must not cancel the shared open job.
        return await asyncio.shield(asyncio.wrap_future(future))

    async def history(
        self, camera: str | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        """The exposure records, oldest first (see `journal_db.query_records`).

        Entries that could not be written yet (disk full, read-only) are
        included: reads never need the disk to be writable.
        """
        return await self._read(camera=camera, last=last)

    async def find(self, request_id: str) -> list[dict[str, Any]]:
        """The records of a client-chosen id (its ``request_id`` or own id)."""
        return await self._read(request_id=request_id)

    async def close(self) -> None:
        """Detaches, commits what is queued, and closes the file."""
        if self._closed:
            return
        self.detach()
        if self._open_future is not None:  # never opened: nothing to write
            with contextlib.suppress(JournalError):
                await self.flush()
        self._closed = True
        await asyncio.wrap_future(self._executor.submit(self._close_sync))
        self._executor.shutdown(wait=False)

    # The journal thread --------------------------------------------------------

    async def _run(self, func: Any) -> Any:
        """Runs ``func(conn)`` on the journal thread after the queued entries."""
        await self.open()

        def job() -> Any:
            self._write_pending()
            return func(self._connection())

        return await asyncio.wrap_future(self._executor.submit(job))

    async def _read(self, **query: Any) -> list[dict[str, Any]]:
        """Records after the queued entries, committed or not (`read_merged`)."""
        await self.open()

        def job() -> list[dict[str, Any]]:
            with contextlib.suppress(JournalError):  # the entries stay pending
                self._write_pending()
            conn = self._connection()
            with self._lock:
                pending = list(self._pending)
            return read_merged(conn, pending, self._base, **query)

        return await asyncio.wrap_future(self._executor.submit(job))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("The journal is closed or failed to open.")
        return self._conn

    def _open_sync(self) -> list[dict[str, Any]]:
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_file = self._take_lock(self.path)
            self._conn = connect(":memory:" if self.path is None else self.path)
            interrupted = in_flight(self._conn)
            if self.base is not None:
                self._base = self._open_base(self.base)
        except (OSError, sqlite3.Error) as err:
            self._close_sync()
            raise JournalError(
                f"Cannot open the exposure journal {self.path}: {err}. Check that "
                "its directory is writable, or set actor.journal elsewhere."
            ) from err
        entries = []
        for record in interrupted:
            record["error"] = interruption(record)
            entries.append(
                Entry(
                    record["exposure_id"],
                    "interrupted",
                    utc_now(),
                    "interrupted",
                    {"error": record["error"]},
                )
            )
        # Marked before any new entry: those are queued behind this job.
        apply_entries(self._conn, entries)
        return interrupted

    @staticmethod
    def _open_base(path: Path) -> sqlite3.Connection | None:
        if not path.is_file():  # no history to read
            return None
        try:
            return connect(path, read_only=True)
        except (OSError, sqlite3.Error) as err:
            log.error("Cannot read the exposure journal %s: %s.", path, err)
            return None

    def _open_locked(self) -> concurrent.futures.Future:
        """The open job, submitted once (call with ``self._lock`` held)."""
        if self._open_future is None:
            self._open_future = self._executor.submit(self._open_sync)
        return self._open_future

    @staticmethod
    def _take_lock(path: Path) -> IO[str]:
        lock_path = path.with_name(path.name + ".lock")
        handle = open(lock_path, "a+")  # held while the journal is open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise JournalError(
                f"The exposure journal {path} is in use by another process "
                f"(pid {owner}); give each actor its own actor.journal."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def _write_pending(self) -> None:
        with self._lock:
            entries, self._pending = self._pending, []
            self._batch = None
        if not entries:
            return
        if self._conn is None:
            self._report("not open", f"{len(entries)} entries dropped")
            raise JournalError("The exposure journal failed to open.")
        try:
            apply_entries(self._conn, entries)
        except sqlite3.OperationalError as err:  # disk full, read-only: retry
            with self._lock:
                self._pending[:0] = entries
            self._report(str(err), f"{len(entries)} entries kept for a retry")
            raise JournalError(
                f"The exposure journal cannot be written: {err}."
            ) from err
        except Exception as err:  # not retried: the same entries would fail
            self._report(str(err), f"{len(entries)} entries dropped")
            raise JournalError(
                f"The exposure journal rejected entries: {err}."
            ) from err
        if self.error is not None:
            log.warning("Exposure journal %s writable again.", self.path)
        self.error = None

    def _report(self, error: str, consequence: str) -> None:
        """Logs an error once (until the journal works again)."""
        if error != self.error:
            log.error("Exposure journal %s: %s; %s.", self.path, error, consequence)
        self.error = error

    def _close_sync(self) -> None:
        if self._base is not None:
            self._base.close()
            self._base = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None
