"""An actor killed mid-exposure: the next one reports it, once; history shows it.

The actor runs as a real ``camactor ... actor --foreground`` process on the
real broker and is killed with SIGKILL while it integrates. Every process is
killed in a ``finally``; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml
from actor_fixtures import BROKER, actor_config, keywords
from actor_test_helpers import ReplyLog, errors
from clu import AMQPClient

from camera_core.journal_db import read_history


def write_config(tmp_path: Path) -> Path:
    config = actor_config(tmp_path)
    config["actor"].update(
        log_dir=str(tmp_path / "logs"), pid_file=str(tmp_path / "actor.pid")
    )
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def camactor(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "actor", "-c", str(config), *args]


def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def run_cli(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs ``camactor -c config args`` to completion (bounded), output as text."""
    return subprocess.run(
        camactor(config, *args),
        capture_output=True,
        text=True,
        timeout=60,
        env=env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )


def start(config: Path, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        camactor(config, "actor", "--foreground"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env(tmp_path),
        cwd=tmp_path,
    )


def end(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def command(client: AMQPClient, name: str, text: str, limit: float = 10):
    return await asyncio.wait_for(
        client.send_command(name, text, time_limit=limit), limit + 5
    )


async def wait_ready(client: AMQPClient, name: str, cameras: int = 2) -> None:
    """Waits until the actor answers and its cameras are connected."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            reply = await command(client, name, "list", limit=3)
            listed = keywords(reply, "cameras")
            if listed and sum(c["connected"] for c in listed[0]) == cameras:
                return
        except Exception:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"actor {name} never became ready")


def wait_journal(path: Path, predicate, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            records = read_history(path, last=100)
            if predicate(records):
                return records
        time.sleep(0.1)
    raise AssertionError("the journal never reached the expected state")


def frames(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "data").rglob("*.fits"))


async def test_kill_mid_exposure_is_reported_once_and_never_retaken(tmp_path):
    config = write_config(tmp_path)
    name = yaml.safe_load(config.read_text())["actor"]["name"]
    journal = tmp_path / "data" / "journal.sqlite"
    client = AMQPClient(f"camtest-client-{uuid.uuid4().hex[:8]}", **BROKER)
    await asyncio.wait_for(client.start(), 10)
    log = ReplyLog(name)
    client.add_reply_callback(log)
    processes: list[subprocess.Popen] = []
    try:
        processes.append(first := start(config, tmp_path))
        await wait_ready(client, name)
        done = await command(client, name, "expose sim1 0.05 --exposure-id done-1")
        assert done.status.did_succeed, errors(done)
        (written,) = keywords(done, "filename")
        await client.send_command(
            name, "expose sim1 60 --exposure-id crash-1", await_command=False
        )

        def integrating(records):
            crash = [r for r in records if r["exposure_id"] == "crash-1"]
            return crash and "integrating" in [p["phase"] for p in crash[0]["phases"]]

        wait_journal(journal, integrating)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert frames(tmp_path) == ["sim1-0001.fits"]

        processes.append(second := start(config, tmp_path))
        await wait_ready(client, name)
        reports = [
            body for _, _, body in log.replies if "interrupted_exposures" in body
        ]
        assert len(reports) == 1, reports
        (lost,) = reports[0]["interrupted_exposures"]
        assert lost["exposure_id"] == "crash-1" and lost["camera"] == "sim1"
        assert lost["request_id"] == "crash-1" and lost["state"] == "exposing"
        assert "Interrupted" in lost["error"] and "integrating" in lost["error"]
        codes = [
            code for _, code, body in log.replies if "interrupted_exposures" in body
        ]
        assert codes == ["w"]

        # The journal marks it; a retry of its id takes no frame.
        records = read_history(journal)
        crash = next(r for r in records if r["exposure_id"] == "crash-1")
        assert crash["state"] == "interrupted" and crash["ended"] is not None
        assert crash["phases"][-1]["phase"] == "interrupted"
        started = time.monotonic()
        retry = await command(client, name, "expose sim1 60 --exposure-id crash-1")
        assert retry.status.did_fail and time.monotonic() - started < 5
        assert "already taken and did not succeed" in errors(retry)
        assert "Interrupted" in errors(retry)
        replay = await command(client, name, "expose sim1 0.05 --exposure-id done-1")
        assert replay.status.did_succeed and keywords(replay, "filename") == [written]
        assert frames(tmp_path) == ["sim1-0001.fits"]

        history = await command(client, name, "history --camera sim1 --last 5")
        states = {
            r["exposure_id"]: r["state"] for r in keywords(history, "exposure_record")
        }
        assert states == {"done-1": "written", "crash-1": "interrupted"}

        result = run_cli(config, tmp_path, "history", "--last", "5")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split()[:3] == ["STARTED", "(UTC)", "EXPOSURE_ID"]
        assert "done-1" in lines[1] and "written" in lines[1]
        assert lines[1].endswith(written["path"])
        assert "crash-1" in lines[2] and "interrupted" in lines[2]
        assert "Interrupted: the process stopped" in lines[2]
        result = run_cli(config, tmp_path, "history", "--camera", "sim1", "--json")
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["exposure_id"] for r in records] == ["done-1", "crash-1"]
        assert records[0]["checksum"] == written["checksum"]

        # Reported once: a clean restart has nothing to report.
        end(second)
        count = len(log.replies)
        processes.append(third := start(config, tmp_path))
        await wait_ready(client, name)
        assert not [
            b for _, _, b in log.replies[count:] if "interrupted_exposures" in b
        ]
        end(third)
    finally:
        for process in processes:
            end(process, signal.SIGKILL)
        await client.stop()


def test_cli_history_without_a_journal_fails_clearly(tmp_path):
    config = write_config(tmp_path)
    result = run_cli(config, tmp_path, "history")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: no exposure journal at ")
    assert "actor.data_dir" in result.stderr and "Traceback" not in result.stderr
