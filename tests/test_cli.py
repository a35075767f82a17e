"""The ``camactor`` launcher: help, config errors, cameras, daemon and foreground.

Every subprocess has a timeout, and every actor started here is stopped in a
``finally``, so no test can hang or leak a process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from clu import AMQPClient

ROOT = Path(__file__).resolve().parents[1]
BROKER = {"host": "127.0.0.1", "port": 5672}


def write_config(tmp_path: Path, **actor: object) -> Path:
    """The packaged config with tiny, fast simulated cameras, under tmp_path."""
    config = yaml.safe_load((ROOT / "etc" / "camactor.yml").read_text())
    config["simulator"].update(width=64, height=64, time_factor=0.01)
    for camera in config["cameras"].values():
        for key in ("width", "height"):
            camera.get("simulator", {}).pop(key, None)
    config["actor"].update(
        name=f"camtest_{uuid.uuid4().hex[:12]}",
        pid_file=str(tmp_path / "run" / "camactor.pid"),
        log_dir=str(tmp_path / "logs"),
        data_dir=str(tmp_path / "data"),
        poll_interval=0.2,
        **actor,
    )
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return env


def camactor(
    tmp_path: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )


def actor_name(config: Path) -> str:
    return yaml.safe_load(config.read_text())["actor"]["name"]


async def ping(name: str, deadline: float) -> list[dict]:
    """Pings the actor until it answers or ``deadline`` (monotonic) passes."""
    client = AMQPClient(f"camtest-client-{uuid.uuid4().hex[:8]}", **BROKER)
    await asyncio.wait_for(client.start(), 10)
    try:
        while True:
            try:
                command = await asyncio.wait_for(
                    client.send_command(name, "ping", time_limit=5), 10
                )
                if command.status.did_succeed:
                    return [reply.message for reply in command.replies]
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"actor {name} never answered ping")
            await asyncio.sleep(0.2)
    finally:
        await client.stop()


def test_help(tmp_path):
    result = camactor(tmp_path, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    for word in ("actor", "cameras", "demo", "--config", "--url", "--host"):
        assert word in result.stdout
    for word in ("--port", "--user", "--name", "--verbose"):
        assert word in result.stdout
    result = camactor(tmp_path, "actor", "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    for word in ("start", "stop", "restart", "status", "run", "--foreground"):
        assert word in result.stdout


def test_config_error_exits_2_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("actor:\n  prot: 5672\n")
    result = camactor(tmp_path, "-c", str(bad), "cameras", timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: ")
    assert "actor.prot" in result.stderr and "did you mean actor.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_and_flags_exit_2(tmp_path):
    config = write_config(tmp_path)
    env = {**cli_env(tmp_path), "CAMACTOR_BROKER_PORT": "abc"}
    result = subprocess.run(
        [sys.executable, "-m", "actor", "-c", str(config), "cameras"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "Error: CAMACTOR_BROKER_PORT" in result.stderr
    result = camactor(tmp_path, "-c", str(config), "--name", "9bad", "cameras")
    assert result.returncode == 2 and "actor.name" in result.stderr
    result = camactor(tmp_path, "-c", str(tmp_path / "none.yml"), "cameras")
    assert result.returncode == 2 and "none.yml" in result.stderr


def test_camera_errors_fail_before_the_daemon_detaches(tmp_path):
    config = write_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["cameras"]["sim1"]["image_namer"] = {"basename": "{oops"}
    config.write_text(yaml.safe_dump(data))
    for args in (["actor", "start"], ["actor", "--foreground"], ["cameras"]):
        result = camactor(tmp_path, "-c", str(config), *args, timeout=30)
        assert result.returncode == 2, args
        assert "Error: invalid camera configuration: Camera 'sim1'" in result.stderr
    assert not (tmp_path / "run" / "camactor.pid").exists()


def test_cameras_lists_configured_cameras(tmp_path):
    config = write_config(tmp_path)
    result = camactor(tmp_path, "-c", str(config), "cameras", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NAME", "UID", "CONFIGURED", "AVAILABLE", "CONNECTED"]
    assert rows[1:] == [
        ["sim1", "SIM-0001", "yes", "yes", "yes"],
        ["sim2", "SIM-0002", "yes", "yes", "yes"],
    ]


def test_cameras_shows_an_unavailable_camera(tmp_path):
    config = write_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["cameras"]["sim2"]["simulator"] = False  # not plugged in
    config.write_text(yaml.safe_dump(data))
    result = camactor(tmp_path, "-c", str(config), "cameras", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    assert "sim2  SIM-0002  yes         no         no" in result.stdout
    assert "sim1  SIM-0001  yes         yes        yes" in result.stdout


def test_status_when_not_running(tmp_path):
    config = write_config(tmp_path)
    result = camactor(tmp_path, "-c", str(config), "actor", "status", timeout=30)
    assert result.returncode == 1
    assert "not running" in result.stdout


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (it only awaits reaping).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


async def test_daemon_start_status_ping_stop(tmp_path):
    config = write_config(tmp_path)
    name = actor_name(config)
    pid_file = tmp_path / "run" / "camactor.pid"
    pid = None
    try:
        started = camactor(tmp_path, "-c", str(config), "actor", "start", timeout=30)
        assert started.returncode == 0, started.stdout + started.stderr
        deadline = time.monotonic() + 20
        while True:
            status = camactor(tmp_path, "-c", str(config), "actor", "status")
            if status.returncode == 0:
                break
            assert time.monotonic() < deadline, status.stdout + status.stderr
            time.sleep(0.2)
        pid = read_pid(pid_file)
        assert pid is not None and pid_alive(pid)
        assert "is running" in status.stdout and f"pid {pid}" in status.stdout

        replies = await ping(name, time.monotonic() + 20)
        assert {"text": "Pong."} in replies

        stopped = camactor(tmp_path, "-c", str(config), "actor", "stop", timeout=40)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        status = camactor(tmp_path, "-c", str(config), "actor", "status")
        assert status.returncode == 1 and "not running" in status.stdout
        assert not pid_file.exists()
        assert not pid_alive(pid)
        log = (tmp_path / "logs" / f"{name}-daemon.log").read_text()
        assert "guest:guest" not in log  # no credentials in the logs
    finally:
        pid = read_pid(pid_file) or pid
        if pid is not None and pid_alive(pid):
            camactor(tmp_path, "-c", str(config), "actor", "stop", timeout=40)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", [["--foreground"], ["run"]])
async def test_foreground_actor_answers_and_stops_on_sigterm(tmp_path, how):
    config = write_config(tmp_path)
    name = actor_name(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "actor", "-c", str(config), "actor", *how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    try:
        replies = await ping(name, time.monotonic() + 20)
        assert {"text": "Pong."} in replies
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert f"Actor {name} on amqp://guest@127.0.0.1:5672" in stderr
        assert "guest:guest" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_unreachable_broker_fails_cleanly(tmp_path):
    config = write_config(tmp_path)
    result = camactor(tmp_path, "-c", str(config), "--port", "1", "actor", "run")
    assert result.returncode == 1
    assert "Error: actor" in result.stderr and "AMQP" in result.stderr
    assert "Traceback" not in result.stderr
