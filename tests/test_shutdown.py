"""A clean stop (SIGTERM) never loses a frame silently.

The actor runs as a real ``camactor ... actor --foreground`` process. A frame is
read, and its write fails (injected ``write_failure``) and waits between
retries when SIGTERM arrives: the actor must wait for the write, so the frame
ends on disk (or in the spool) and the launcher exits 0; or, if it can be saved
nowhere, log a CRITICAL line for the frame and exit `EXIT_UNSAVED`. The
deliberate stop must not be logged as a lost broker connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from actor_fixtures import BROKER, actor_config, start_actor
from clu import AMQPClient
from clu.base import Reply
from test_actor_history import camactor, env, wait_ready

from actor.daemon import EXIT_UNSAVED
from camera_core import CameraEvent, EventListener
from camera_core.journal_db import read_history

LOST = "Lost the broker connection"


def launch(tmp_path: Path, write_failure: dict[str, Any], **camera: Any):
    """Starts the launcher with sim1's writes failing; returns (process, log)."""
    config = actor_config(tmp_path)
    config["actor"].update(log_dir=str(tmp_path / "logs"))
    config["cameras"]["sim1"].update(camera)
    config["cameras"]["sim1"]["simulator"]["faults"] = {"write_failure": write_failure}
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    output = tmp_path / "output.txt"
    with output.open("w") as stream:
        process = subprocess.Popen(
            camactor(path, "actor", "--foreground"),
            stdout=stream,
            stderr=stream,
            stdin=subprocess.DEVNULL,
            env=env(tmp_path),
            cwd=tmp_path,
        )
    return process, config["actor"]["name"], output


async def wait_state(journal: Path, state: str, timeout: float = 20) -> dict:
    """Polls the journal of the actor process until a frame is in ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            records = [r for r in read_history(journal) if r["state"] == state]
            if records:
                return records[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no frame reached {state!r} in the journal")


async def sigterm_mid_write(
    tmp_path: Path, write_failure: dict[str, Any], **camera: Any
) -> tuple[int, float, str, str, Any]:
    """Exposes sim1, sends SIGTERM while its frame is being written.

    Returns the exit status, the seconds SIGTERM took, the exposure id, the
    launcher's output and the expose command.
    """
    process, name, output = launch(tmp_path, write_failure, **camera)
    client = AMQPClient(**BROKER)
    await client.start()
    try:
        await wait_ready(client, name)
        expose = await client.send_command(
            name, "expose sim1 0.01", time_limit=60, await_command=False
        )
        record = await wait_state(tmp_path / "data" / "journal.sqlite", "writing")
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(process.wait, 90)
        elapsed = time.monotonic() - start
        with contextlib.suppress(TimeoutError):  # checked by the caller
            await asyncio.wait_for(asyncio.shield(expose), 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        await client.stop()
    return status, elapsed, record["exposure_id"], output.read_text(), expose


@pytest.mark.parametrize(
    ("fault", "folder", "name", "state"),
    [
        # Two failed attempts (1.5 s then 3 s of backoff), then the write works.
        ({"errno": "EIO", "count": 2}, "data", "sim1-0001.fits", "written"),
        # The target never works: the frame goes to the spool after the retries.
        ({"errno": "EIO"}, "spool", "*-sim1-0001.fits", "spooled"),
    ],
)
async def test_sigterm_waits_for_a_write_being_retried(
    tmp_path, fault, folder, name, state
):
    status, elapsed, exposure_id, text, expose = await sigterm_mid_write(
        tmp_path, fault, write_retries=2, write_backoff=1.5
    )
    assert status == 0, text[-3000:]
    assert elapsed > 1.0  # it waited for the retries...
    assert elapsed < 60  # ...not for stop_timeout
    assert len(list((tmp_path / folder).rglob(name))) == 1
    assert len(list(tmp_path.rglob("*.fits"))) == 1
    assert "Stopping: waiting up to" in text and exposure_id in text
    assert expose.status.did_succeed  # its replies went out before the close
    assert any("filename" in reply.message for reply in expose.replies)
    [record] = [
        r
        for r in read_history(tmp_path / "data" / "journal.sqlite")
        if r["exposure_id"] == exposure_id
    ]
    assert record["state"] == state
    assert LOST not in text and "CRITICAL" not in text


async def test_sigterm_with_a_frame_saved_nowhere_exits_non_zero(tmp_path):
    status, _, exposure_id, text, expose = await sigterm_mid_write(
        tmp_path,
        {"errno": "EIO", "include_spool": True},
        write_retries=2,
        write_backoff=1.0,
    )
    assert status == EXIT_UNSAVED, text[-3000:]
    critical = [line for line in text.splitlines() if " CRITICAL " in line]
    assert any(
        exposure_id in line and "NOT SAVED" in line and "spool" in line
        for line in critical
    ), critical
    assert any("saved nowhere" in line for line in critical), critical
    assert not list(tmp_path.rglob("*.fits"))
    assert expose.status.did_fail
    assert LOST not in text


async def test_stop_gives_up_after_stop_timeout(tmp_path, caplog):
    """A write that outlasts ``stop_timeout`` is reported, not waited for."""
    config = actor_config(tmp_path)
    config["cameras"]["sim1"].update(write_retries=3, write_backoff=30.0)
    config["cameras"]["sim1"]["simulator"]["faults"] = {
        "write_failure": {"errno": "EIO"}
    }
    actor = await start_actor(config)
    actor.stop_timeout = 0.5
    listener = EventListener()
    actor.camera_system.notifier.register_listener(listener)
    client = AMQPClient(**BROKER)
    await client.start()
    try:
        expose = await client.send_command(
            actor.name, "expose sim1 0.01", time_limit=60, await_command=False
        )
        assert await listener.wait_for(CameraEvent.EXPOSURE_WRITING, timeout=10)
        [exposure] = actor.pending_writes.exposures()
        start = time.monotonic()
        with caplog.at_level(logging.CRITICAL):
            await actor.stop()
        assert 0.4 < time.monotonic() - start < 5
    finally:
        actor.camera_system.notifier.remove_listener(listener)
        await listener.stop_listening()
        await client.stop()
    assert actor.unsaved_at_stop == [exposure]
    assert any(
        exposure.exposure_id in record.getMessage()
        and "NOT SAVED" in record.getMessage()
        and "still running after 0.5 s" in record.getMessage()
        for record in caplog.records
        if record.levelno == logging.CRITICAL
    ), caplog.text
    writes = list(actor.pending_writes)
    for task in writes:
        task.cancel()
    await asyncio.gather(*writes, return_exceptions=True)
    assert not expose.status.did_succeed


async def test_a_reply_after_a_deliberate_stop_is_no_outage(tmp_path, caplog):
    """A reply published once the actor closed its connection (a command that
    ended during the stop) was logged as a lost broker connection."""
    actor = await start_actor(actor_config(tmp_path))
    await actor.stop()
    with caplog.at_level(logging.DEBUG):
        await actor._write_internal(Reply("i", {"text": "late"}, broadcast=True))
    assert LOST not in caplog.text
    assert "the actor is stopping" in caplog.text
    assert len(actor.outbox) == 0 and actor.outbox.connected


def test_stop_timeout_comes_from_the_config(tmp_path):
    from actor.actor import CameraActor
    from actor.config import validate_config
    from actor.daemon import ActorDaemonGroup, CliState

    config = actor_config(tmp_path)
    config["actor"]["stop_timeout"] = 7.5
    validated = validate_config(config)
    assert CameraActor.from_config(validated).stop_timeout == 7.5
    group = ActorDaemonGroup(name="actor")
    group.configure(CliState(config_path=tmp_path / "c.yml", config=validated))
    assert group.daemon.stop_timeout == 22.5  # `camactor actor stop` waits longer
    assert validate_config(actor_config(tmp_path))["actor"]["stop_timeout"] == 60.0
