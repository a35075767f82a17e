"""The exposure journal records every exposure, whatever its outcome.

Real actor on the real broker: frames written, spooled, unsaved, failed,
aborted and refused each leave a complete record (parameters, phases with
UTC times, file, checksum, error) in the journal file of the data directory.
"""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
from pathlib import Path

import pytest
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import camera, failed, fails, fits_files, ok, wait_for
from astropy.io import fits

from camera_core import journal as journal_module
from camera_core.journal import ExposureJournal, JournalError
from camera_core.journal_db import read_history


def journal_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite"


def phases(record: dict) -> list[str]:
    return [phase["phase"] for phase in record["phases"]]


def assert_utc_times(record: dict) -> None:
    times = [record["started"]] + [phase["time"] for phase in record["phases"]]
    parsed = [datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times]
    assert all(t.utcoffset() == datetime.timedelta(0) for t in parsed)
    assert parsed == sorted(parsed)
    now = datetime.datetime.now(datetime.UTC)
    assert now - datetime.timedelta(minutes=5) < parsed[0] <= now


async def test_written_exposure_has_a_complete_record(actor, client, tmp_path):
    command = await ok(client, actor, "expose sim1 0.05 --dark -s 2 -n 7")
    (reply,) = keywords(command, "filename")
    await actor.journal.journal.flush()
    (record,) = read_history(journal_file(tmp_path))
    assert record["exposure_id"] == reply["exposure_id"]
    assert record["camera"] == "sim1"
    assert record["state"] == "written" and record["error"] is None
    assert record["path"] == reply["path"] == str(fits_files(tmp_path, "sim1")[0])
    assert record["spooled"] is False
    with fits.open(record["path"]) as hdul:
        assert record["datasum"] == hdul[0].header["DATASUM"]
        assert record["checksum"] == hdul[0].header["CHECKSUM"]
    parameters = record["parameters"]
    assert parameters["exptime"] == 0.05 and parameters["image_type"] == "dark"
    assert parameters["stack"] == 2 and parameters["num"] == 7
    assert (parameters["count_n"], parameters["count_total"]) == (1, 1)
    names = phases(record)
    assert names[0] == "requested"
    for phase in ("flushing", "integrating", "reading", "read", "writing"):
        assert phase in names
    assert names[-1] == "written"
    frames = [p["frame"] for p in record["phases"] if p["phase"] == "integrating"]
    assert frames == [1, 2]  # each frame of the stack
    assert_utc_times(record)
    assert record["ended"] == record["phases"][-1]["time"]


async def test_spooled_and_unsaved_frames_are_recorded(actor, client, tmp_path):
    sim1 = camera(actor, "sim1")
    sim1.write_backoff = 0.01
    sim1.inject_fault("write_failure")  # the target fails, the spool works
    command = await send(client, actor, "expose sim1 0.05")
    (reply,) = keywords(command, "filename")
    assert reply["spooled"] is True
    sim1.inject_fault("write_failure", include_spool=True)  # nowhere to write
    unsaved = await send(client, actor, "expose sim1 0.05")
    assert failed(unsaved)
    sim1.clear_faults()
    await actor.journal.journal.flush()
    spooled, lost = read_history(journal_file(tmp_path))
    assert spooled["state"] == "spooled" and spooled["spooled"] is True
    assert spooled["path"] == reply["path"] and Path(spooled["path"]).is_file()
    assert "EROFS" in spooled["error"] or "Read-only" in spooled["error"]
    assert phases(spooled)[-1] == "spooled"
    assert lost["state"] == "unsaved" and phases(lost)[-1] == "unsaved"
    assert "NOT WRITTEN" in lost["error"]
    assert lost["filename"].endswith(".fits")


async def test_failed_aborted_and_refused_exposures(actor, client, tmp_path):
    sim2 = camera(actor, "sim2")
    sim2.inject_fault("readout_timeout")
    command = await send(client, actor, "expose sim2 0.05 --timeout 0.2")
    assert failed(command)
    sim2.clear_faults()

    sim1 = camera(actor, "sim1")
    long = await client.send_command(
        actor.name, "expose sim1 5", await_command=False, time_limit=15
    )
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    await ok(client, actor, "abort sim1")
    await asyncio.wait_for(long, 10)

    refused = await send(client, actor, "expose sim2 4000")  # the camera refuses
    assert failed(refused)

    await actor.journal.journal.flush()
    records = read_history(journal_file(tmp_path), last=10)
    by_state = {record["state"]: record for record in records}
    timeout = records[0]
    assert timeout["camera"] == "sim2" and "did not finish" in timeout["error"]
    assert phases(timeout)[-1] == "failed"
    aborted = by_state["aborted"]
    assert aborted["camera"] == "sim1" and phases(aborted)[-1] == "aborted"
    assert "integrating" in phases(aborted)
    refusal = records[-1]
    assert refusal["state"] == "failed" and phases(refusal) == ["requested", "failed"]
    assert "outside [0.0, 3600.0]" in refusal["error"]
    assert refusal["parameters"]["exptime"] == 4000
    assert not fits_files(tmp_path, "sim1") and not fits_files(tmp_path, "sim2")
    for record in records:
        assert record["state"] in ("failed", "aborted"), record
        assert record["ended"] is not None


async def test_history_command(actor, client, tmp_path):
    for text in ("expose sim1 0.05", "expose sim2 0.05", "expose sim1 0.05 --flat"):
        await ok(client, actor, text)
    command = await ok(client, actor, "history")
    records = keywords(command, "exposure_record")
    assert [r["camera"] for r in records] == ["sim1", "sim2", "sim1"]
    assert [r["parameters"]["image_type"] for r in records][-1] == "flat"
    assert all(r["state"] == "written" for r in records)
    command = await ok(client, actor, "history --camera sim1 --last 1")
    (record,) = keywords(command, "exposure_record")
    assert record["parameters"]["image_type"] == "flat"
    assert [f.name for f in fits_files(tmp_path, "sim1")][-1] in record["path"]
    command = await ok(client, actor, "history --camera nocam")
    assert keywords(command, "exposure_record") == []
    assert "No exposures of camera nocam" in keywords(command, "text")[0]
    for text in ("history --last 0", "history --last 501", "history --last x"):
        command = await send(client, actor, text)
        assert failed(command), text
        assert "--last" in command.replies[-1].message["error"]


async def test_unusable_journal_leaves_the_actor_running(tmp_path, client):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the journal's directory should be")
    config = actor_config(tmp_path)
    config["actor"]["journal"] = str(blocker / "journal.sqlite")
    actor = await start_actor(config)
    try:
        command = await ok(client, actor, "expose sim1 0.05")
        assert len(keywords(command, "filename")) == 1
        command = await ok(client, actor, "history")
        (record,) = keywords(command, "exposure_record")  # kept in memory
        assert record["state"] == "written"
        assert actor.journal.journal.path is None
    finally:
        await actor.stop()


async def test_a_journal_file_has_one_owner(tmp_path):
    path = tmp_path / "journal.sqlite"
    first = ExposureJournal(path)
    await first.open()
    second = ExposureJournal(path)
    with pytest.raises(JournalError, match="in use by another process"):
        await second.open()
    await second.close()
    await first.close()
    third = ExposureJournal(path)  # the lock goes with the owner
    assert await third.open() == []
    await third.close()


async def test_journal_writes_are_ordered_and_batched(tmp_path):
    journal = ExposureJournal(tmp_path / "journal.sqlite")
    await journal.open()
    for index in range(2000):
        journal.append(f"e{index}", "requested", "requested", camera="c")
        journal.append(f"e{index}", "failed", "failed", error=f"error {index}")
    await journal.flush()
    records = await journal.history(last=2000)
    assert [r["exposure_id"] for r in records] == [f"e{i}" for i in range(2000)]
    assert all(phases(r) == ["requested", "failed"] for r in records)
    assert records[-1]["error"] == "error 1999"
    await journal.close()


class FailingWrites:
    """Makes the journal's database writes fail, as a full disk does."""

    def __init__(self, monkeypatch) -> None:
        self.failing = True
        self.calls = 0
        original = journal_module.apply_entries

        def apply(conn, entries):
            self.calls += 1
            if self.failing:
                raise sqlite3.OperationalError("database or disk is full")
            return original(conn, entries)

        monkeypatch.setattr(journal_module, "apply_entries", apply)


async def test_a_failing_journal_keeps_its_entries(tmp_path, monkeypatch):
    journal = ExposureJournal(tmp_path / "journal.sqlite")
    await journal.open()
    fault = FailingWrites(monkeypatch)
    journal.append("a", "requested", "requested", camera="c")
    with pytest.raises(JournalError, match="disk is full"):
        await journal.flush()
    assert journal.error == "database or disk is full"
    journal.append("a", "written", "written", path="/x.fits")
    fault.failing = False
    await journal.flush()
    assert journal.error is None
    (record,) = await journal.history()
    assert phases(record) == ["requested", "written"] and record["path"] == "/x.fits"
    await journal.close()


async def test_journal_faults_never_cost_a_frame(actor, client, tmp_path, monkeypatch):
    fault = FailingWrites(monkeypatch)
    command = await ok(client, actor, "expose sim1 0.05")
    (written,) = keywords(command, "filename")
    assert Path(written["path"]).is_file()
    assert fault.calls >= 1
    # An id is only used once its request is on disk: refused, no frame taken.
    await fails(client, actor, "expose sim1 0.05 --exposure-id jf-1", match="refused")
    assert len(fits_files(tmp_path, "sim1")) == 1
    fault.failing = False
    first = await ok(client, actor, "expose sim1 0.05 --exposure-id jf-1")
    again = await ok(client, actor, "expose sim1 0.05 --exposure-id jf-1")
    assert keywords(again, "filename") == keywords(first, "filename")
    assert len(fits_files(tmp_path, "sim1")) == 2
    records = read_history(journal_file(tmp_path))  # the backlog was written
    assert [r["state"] for r in records] == ["written", "written"]
    assert records[0]["exposure_id"] == written["exposure_id"]
    assert records[1]["exposure_id"] == "jf-1"
    assert phases(records[1])[0] == "requested"


async def test_recover_records_the_frames_new_home(actor, client, tmp_path):
    sim1 = camera(actor, "sim1")
    sim1.inject_fault("write_failure", errno="EROFS")  # target fails, spool works
    command = await send(client, actor, "expose sim1 0.05")
    (spooled,) = keywords(command, "filename")
    assert spooled["spooled"]
    sim1.clear_faults()
    await ok(client, actor, "recover")
    command = await ok(client, actor, "history --camera sim1 --last 1")
    (record,) = keywords(command, "exposure_record")
    assert record["exposure_id"] == spooled["exposure_id"]
    assert record["state"] == "written" and record["spooled"] is False
    assert record["path"] == spooled["filename"] and Path(record["path"]).exists()
    assert record["phases"][-1]["phase"] == "recovered"
