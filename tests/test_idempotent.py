"""``expose --exposure-id``: a retried command never takes a second frame.

Real actor on the real broker. Each test counts the FITS files on disk (and
the frames the simulated camera took) to prove that no second frame was taken,
and checks that the retry reports the first command's outcome.
"""

from __future__ import annotations

import asyncio

import pytest
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import camera, errors, failed, fits_files, ok, wait_for

from camera_core.journal_db import read_history


class FrameCounter:
    """Counts the frames a simulated camera reads out."""

    def __init__(self, cam) -> None:
        self.count = 0
        original = cam._expose_internal

        async def counted(exposure, **kwargs):
            result = await original(exposure, **kwargs)
            self.count += 1
            return result

        cam._expose_internal = counted


async def test_same_id_twice_takes_one_frame(actor, client, tmp_path):
    frames = FrameCounter(camera(actor, "sim1"))
    first = await ok(client, actor, "expose sim1 0.05 --exposure-id obs-42")
    (written,) = keywords(first, "filename")
    assert written["exposure_id"] == "obs-42"
    again = await ok(client, actor, "expose sim1 0.05 --exposure-id obs-42")
    assert keywords(again, "filename") == [written]
    assert "no new frame" in keywords(again, "text")[-1]
    assert [f.name for f in fits_files(tmp_path, "sim1")] == ["sim1-0001.fits"]
    assert frames.count == 1
    other = await ok(client, actor, "expose sim1 0.05 --exposure-id obs-43")
    assert keywords(other, "filename")[0]["exposure_id"] == "obs-43"
    assert len(fits_files(tmp_path, "sim1")) == 2 and frames.count == 2


async def test_retry_while_running_waits_for_the_first(actor, client, tmp_path):
    sim1 = camera(actor, "sim1")
    frames = FrameCounter(sim1)
    first = await client.send_command(
        actor.name, "expose sim1 1 --exposure-id run-1", await_command=False
    )
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    retry = await send(client, actor, "expose sim1 1 --exposure-id run-1")
    await asyncio.wait_for(first, 10)
    assert first.status.did_succeed and retry.status.did_succeed, errors(retry)
    assert "waiting for its outcome" in keywords(retry, "text")[0]
    assert keywords(retry, "filename") == keywords(first, "filename")
    assert len(fits_files(tmp_path, "sim1")) == 1 and frames.count == 1
    # The retry ended after the first one wrote its file.
    assert retry.replies[-1].message_code.value == ":"
    assert not sim1.exposing


async def test_several_cameras_and_count_get_one_id_per_frame(actor, client, tmp_path):
    text = "expose sim1 sim2 0.02 -c 2 --exposure-id flats.7"
    first = await ok(client, actor, text, time_limit=20)
    ids = sorted(entry["exposure_id"] for entry in keywords(first, "filename"))
    assert ids == [
        "flats.7@sim1.1",
        "flats.7@sim1.2",
        "flats.7@sim2.1",
        "flats.7@sim2.2",
    ]
    again = await ok(client, actor, text)
    assert sorted(map(str, keywords(again, "filename"))) == sorted(
        map(str, keywords(first, "filename"))
    )
    assert len(fits_files(tmp_path, "sim1")) == 2
    assert len(fits_files(tmp_path, "sim2")) == 2


async def test_a_failed_exposure_is_reported_not_retaken(actor, client, tmp_path):
    sim2 = camera(actor, "sim2")
    sim2.inject_fault("readout_timeout", count=1)
    first = await send(client, actor, "expose sim2 0.05 --timeout 0.2 --exposure-id f1")
    assert failed(first) and "did not finish" in errors(first)
    frames = FrameCounter(sim2)  # the camera works again
    again = await send(client, actor, "expose sim2 0.05 --timeout 0.2 --exposure-id f1")
    assert failed(again)
    assert "already taken and did not succeed" in errors(again)
    assert "did not finish" in errors(again)
    assert frames.count == 0 and not fits_files(tmp_path, "sim2")


async def test_an_id_refused_before_exposing_can_be_sent_again(actor, client, tmp_path):
    sim1 = camera(actor, "sim1")
    busy = await client.send_command(actor.name, "expose sim1 1", await_command=False)
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    refused = await send(client, actor, "expose sim1 0.05 --exposure-id late")
    assert failed(refused) and "busy" in errors(refused)
    await asyncio.wait_for(busy, 10)
    taken = await ok(client, actor, "expose sim1 0.05 --exposure-id late")
    assert keywords(taken, "filename")[0]["exposure_id"] == "late"
    assert len(fits_files(tmp_path, "sim1")) == 2


async def test_reusing_an_id_for_another_exposure_is_refused(actor, client, tmp_path):
    await ok(client, actor, "expose sim1 0.05 --exposure-id same")
    command = await send(client, actor, "expose sim1 0.5 --flat --exposure-id same")
    assert failed(command)
    error = errors(command)
    assert "already used for another exposure" in error and "send a new id" in error
    assert "exptime 0.05 (now 0.5)" in error and "'object' (now 'flat')" in error
    assert len(fits_files(tmp_path, "sim1")) == 1


@pytest.mark.parametrize(
    "value", ["has space", "slash/es", "-dash", "x" * 65, "é", "a@b", "''", ""]
)
async def test_invalid_ids_are_refused(actor, client, tmp_path, value):
    command = await send(client, actor, f'expose sim1 0.05 --exposure-id "{value}"')
    assert failed(command)
    assert "Invalid --exposure-id" in errors(command)
    assert "letters, digits" in errors(command)
    assert not fits_files(tmp_path, "sim1")


async def test_the_id_survives_an_actor_restart(tmp_path, client):
    config = actor_config(tmp_path)
    actor = await start_actor(config)
    try:
        first = await ok(client, actor, "expose sim1 0.05 --exposure-id night-1")
    finally:
        await actor.stop()
    actor = await start_actor(config)
    try:
        frames = FrameCounter(camera(actor, "sim1"))
        again = await ok(client, actor, "expose sim1 0.05 --exposure-id night-1")
        assert keywords(again, "filename") == keywords(first, "filename")
        assert frames.count == 0 and len(fits_files(tmp_path, "sim1")) == 1
    finally:
        await actor.stop()
    records = read_history(tmp_path / "data" / "journal.sqlite")
    assert [r["exposure_id"] for r in records] == ["night-1"]
    assert records[0]["request_id"] == "night-1"
    assert records[0]["parameters"]["request"]["exptime"] == 0.05


async def test_another_exposures_own_id_is_not_a_retry(actor, client, tmp_path):
    first = await ok(client, actor, "expose sim2 0.05 --flat")
    (other,) = keywords(first, "filename")
    frames = FrameCounter(camera(actor, "sim1"))
    mine = await ok(
        client, actor, f"expose sim1 0.05 --exposure-id {other['exposure_id']}"
    )
    (written,) = keywords(mine, "filename")
    assert written["camera"] == "sim1" and written["path"] != other["path"]
    assert frames.count == 1
    assert len(fits_files(tmp_path, "sim1")) == 1
