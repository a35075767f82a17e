"""The exposure journal on a faulty disk: reads answer, ids stay honest.

The whole data directory, with the journal at its default place
(``<data_dir>/journal.sqlite``), is a small tmpfs (`disk_helpers.Tmpfs`) that
is filled up or remounted read-only for real. Reads (``history``, the look-up
of an ``--exposure-id``) answer from what is committed plus the entries still
waiting in memory; a new ``--exposure-id`` is refused, with no frame taken,
while its request cannot be put on disk.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from actor_fixtures import BROKER, actor_config, keywords, start_actor
from actor_test_helpers import errors, fails, ok
from click.testing import CliRunner
from clu import AMQPClient
from disk_helpers import tmpfs

from actor.__main__ import camactor
from camera_core.journal import ExposureJournal, JournalError
from camera_core.journal_db import read_history


def frames(tmp_path: Path) -> list[str]:
    """Every FITS file in the data directory and the spool."""
    found = [*(tmp_path / "data").rglob("*.fits"), *(tmp_path / "spool").glob("*")]
    return sorted(path.name for path in found if path.suffix == ".fits")


async def history(client, actor) -> dict[str, str]:
    """``history``: the state of each exposure id, oldest first."""
    command = await ok(client, actor, "history --last 50")
    return {r["exposure_id"]: r["state"] for r in keywords(command, "exposure_record")}


@pytest.fixture
async def rig(tmp_path):
    """A running actor whose whole data directory (journal included) is a tmpfs."""
    config = actor_config(tmp_path)
    for name in ("sim1", "sim2"):
        config["cameras"][name].update(write_retries=0, write_backoff=0.01)
    client = AMQPClient(**BROKER)
    await client.start()
    with tmpfs(tmp_path / "data", "8m") as data:
        actor = await start_actor(config)
        try:
            yield SimpleNamespace(actor=actor, client=client, data=data)
        finally:
            await actor.stop()
            await client.stop()


async def test_history_and_a_committed_id_answer_while_the_disk_is_full(rig, tmp_path):
    actor, client = rig.actor, rig.client
    first = await ok(client, actor, "expose sim1 0.05 --exposure-id A1")
    [written] = keywords(first, "filename")
    assert written["spooled"] is False
    assert await asyncio.to_thread(rig.data.fill) > 0

    plain = await ok(client, actor, "expose sim1 0.05")
    [spooled] = keywords(plain, "filename")
    assert spooled["spooled"] is True
    assert "full" in actor.journal.journal.error  # its entries wait in memory
    taken = frames(tmp_path)

    # Committed and waiting entries, merged, without writing the disk.
    assert await history(client, actor) == {
        "A1": "written",
        spooled["exposure_id"]: "spooled",
    }
    # A retry of an id committed before the disk filled: its outcome, no frame.
    again = await ok(client, actor, "expose sim1 0.05 --exposure-id A1")
    assert keywords(again, "filename") == [written]
    assert "no new frame" in keywords(again, "text")[-1]
    assert frames(tmp_path) == taken

    # Space again: the waiting entries are committed, as the merge showed them.
    await asyncio.to_thread(rig.data.free_pages)
    journal = tmp_path / "data" / "journal.sqlite"
    await actor.journal.journal.flush()
    assert actor.journal.journal.error is None
    on_disk = await asyncio.to_thread(read_history, journal)
    assert {r["exposure_id"]: r["state"] for r in on_disk} == {
        "A1": "written",
        spooled["exposure_id"]: "spooled",
    }


async def test_a_new_id_is_refused_until_the_journal_can_record_it(rig, tmp_path):
    actor, client = rig.actor, rig.client
    await ok(client, actor, "expose sim1 0.05")
    assert await asyncio.to_thread(rig.data.fill) > 0
    taken = frames(tmp_path)

    refused = await fails(client, actor, "expose sim1 0.05 --exposure-id B1")
    error = errors(refused)
    assert "refused, no frame taken" in error and "disk is full" in error
    assert "without --exposure-id still works" in error
    assert frames(tmp_path) == taken  # no frame taken
    assert "B1" not in await history(client, actor)  # nothing left to replay
    # Sent again while still full: refused again, never taken.
    await fails(client, actor, "expose sim1 0.05 --exposure-id B1", match="refused")
    assert frames(tmp_path) == taken

    await asyncio.to_thread(rig.data.free_pages)
    accepted = await ok(client, actor, "expose sim1 0.05 --exposure-id B1")
    [file] = keywords(accepted, "filename")
    assert file["exposure_id"] == "B1" and file["spooled"] is False
    retry = await ok(client, actor, "expose sim1 0.05 --exposure-id B1")
    assert keywords(retry, "filename") == [file]
    assert len(frames(tmp_path)) == len(taken) + 1
    assert (await history(client, actor))["B1"] == "written"


async def test_actor_reads_its_journal_in_a_read_only_data_dir(tmp_path):
    config = actor_config(tmp_path)
    client = AMQPClient(**BROKER)
    await client.start()
    try:
        with tmpfs(tmp_path / "data", "8m") as data:
            actor = await start_actor(config)
            try:
                first = await ok(client, actor, "expose sim1 0.05 --exposure-id R1")
            finally:
                await actor.stop()
            await asyncio.to_thread(data.readonly)
            actor = await start_actor(config)  # the journal falls back to memory
            try:
                assert actor.journal.journal.path is None
                assert await history(client, actor) == {"R1": "written"}
                again = await ok(client, actor, "expose sim1 0.05 --exposure-id R1")
                assert keywords(again, "filename") == keywords(first, "filename")
                assert "no new frame" in keywords(again, "text")[-1]
            finally:
                await actor.stop()
                await asyncio.to_thread(data.readonly, False)
    finally:
        await client.stop()


async def test_cli_history_reads_a_read_only_data_dir(tmp_path):
    config = actor_config(tmp_path)
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    with tmpfs(tmp_path / "data", "4m") as data:
        journal = ExposureJournal(tmp_path / "data" / "journal.sqlite")
        await journal.open()
        journal.requested("e1", "sim1", {"exptime": 1.0, "image_type": "object"})
        journal.append("e1", "written", "written", camera="sim1", path="/x.fits")
        await journal.close()
        await asyncio.to_thread(data.readonly)
        try:
            result = await asyncio.to_thread(
                CliRunner().invoke,
                camactor,
                ["-c", str(path), "history", "--json"],
            )
        finally:
            await asyncio.to_thread(data.readonly, False)
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.output.splitlines()]
    assert (record["exposure_id"], record["state"]) == ("e1", "written")
    assert [p["phase"] for p in record["phases"]] == ["requested", "written"]


async def test_reads_merge_waiting_entries_in_place(tmp_path):
    with tmpfs(tmp_path / "data", "4m") as data:
        journal = ExposureJournal(tmp_path / "data" / "journal.sqlite")
        await journal.open()
        try:
            for name in ("e1", "e2", "e3"):
                journal.requested(name, "sim1", {"exptime": 1.0})
            await journal.flush()
            assert await asyncio.to_thread(data.fill) > 0
            journal.append("e1", "written", "written", path="/e1.fits")
            journal.requested("e4", "sim2", {"exptime": 2.0})
            with pytest.raises(JournalError, match="disk is full"):
                await journal.flush()

            records = await journal.history()
            assert [(r["exposure_id"], r["state"]) for r in records] == [
                ("e1", "written"),  # updated at its place, not moved last
                ("e2", "requested"),
                ("e3", "requested"),
                ("e4", "requested"),
            ]
            assert records[0]["path"] == "/e1.fits"
            assert records[0]["parameters"] == {"exptime": 1.0}
            assert [p["phase"] for p in records[0]["phases"]] == [
                "requested",
                "written",
            ]
            last = await journal.history(last=2)
            assert [r["exposure_id"] for r in last] == ["e3", "e4"]
            assert [r["exposure_id"] for r in await journal.history(camera="sim2")] == [
                "e4"
            ]
            (found,) = await journal.find("e1")
            assert found["state"] == "written"

            await asyncio.to_thread(data.free_pages)
            await journal.flush()  # committed as the merge showed them
            assert await journal.history() == records
        finally:
            await journal.close()
