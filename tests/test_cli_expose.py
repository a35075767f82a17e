"""``camactor expose`` (direct and through the actor) and ``camactor status``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from actor_fixtures import actor_config, start_actor
from astropy.io import fits
from click.testing import CliRunner
from process_helpers import run_process

from actor.__main__ import camactor
from actor.cli_progress import ProgressView, describe

REMAINING = re.compile(r"sim1: integrating\s+\[[#-]+\]\s+([0-9.]+) s left")


def write_config(tmp_path: Path, config: dict[str, Any] | None = None) -> Path:
    config = config or actor_config(tmp_path)
    config["actor"]["log_dir"] = None
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_in_pty(args: list[str], timeout: float = 60) -> tuple[int, str]:
    """Runs the launcher with its stdout on a pseudo-terminal."""
    master, slave = pty.openpty()
    # An 80-column terminal.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "actor", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 4096)  # blocks until output or the end
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    return process.returncode, b"".join(chunks).decode() + stderr


def test_describe_and_plain_view():
    state = {
        "camera": "sim1",
        "phase": "integrating",
        "elapsed": 1.0,
        "total": 4.0,
        "remaining": 3.0,
        "count_n": 2,
        "count_total": 3,
        "stack_total": 1,
    }
    text = describe(state, width=8)
    assert text.startswith("sim1: integrating") and "[##------]" in text
    assert "3.0 s left" in text and "image 2/3" in text

    class Capture:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    out = Capture()
    view = ProgressView(out)
    view.update(state)
    view.update({**state, "elapsed": 2.0, "remaining": 2.0})  # same phase: quiet
    view.update({**state, "phase": "reading"})
    assert out.text.count("\n") == 2 and "\r" not in out.text


def test_direct_expose_shows_live_progress_on_a_terminal(tmp_path):
    config = write_config(tmp_path)
    code, output = run_in_pty(["-c", str(config), "expose", "2", "--camera", "sim1"])
    assert code == 0, output
    assert "\x1b[K" in output  # redrawn in place
    remaining = [float(value) for value in REMAINING.findall(output)]
    assert len(remaining) >= 3, output
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > 1.0
    (path,) = re.findall(r"sim1: wrote (\S+)", output)
    with fits.open(path, checksum=True) as hdus:
        assert hdus[0].header["EXPTIME"] == 2.0
    assert "1 file(s) written." in output


def test_direct_expose_plain_output_and_count(tmp_path):
    config = write_config(tmp_path)
    result = CliRunner().invoke(
        camactor,
        [
            "-c",
            str(config),
            "expose",
            "0.2",
            "--camera",
            "sim2",
            "--dark",
            "--count",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    paths = re.findall(r"sim2: wrote (\S+)", result.output)
    assert len(paths) == 2
    for path in paths:
        assert fits.getheader(path)["IMAGETYP"] == "dark"
    assert "image 1/2" in result.output and "image 2/2" in result.output
    assert "\r" not in result.output  # not a terminal: one line per phase


def test_direct_expose_unknown_camera(tmp_path):
    config = write_config(tmp_path)
    result = CliRunner().invoke(
        camactor, ["-c", str(config), "expose", "1", "--camera", "x"]
    )
    assert result.exit_code == 1
    assert "unknown camera x; the config has sim1, sim2" in result.output


async def cli(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Runs the launcher without blocking the event loop of the test's actor."""
    return await run_process(sys.executable, "-m", "actor", *args, timeout=timeout)


@pytest.fixture
async def served(tmp_path):
    """The path of a config whose actor runs (in this test's event loop)."""
    config = actor_config(tmp_path)
    path = write_config(tmp_path, config)
    actor = await start_actor(config)
    yield path
    await actor.stop()


async def test_expose_via_actor_follows_its_keywords(served, tmp_path):
    code, output = await cli(
        "-c", str(served), "expose", "1.5", "--camera", "sim1", "--via-actor"
    )
    assert code == 0, output
    # The CLI has no camera of its own: its progress is the actor's keywords.
    remaining = [float(value) for value in REMAINING.findall(output)]
    assert remaining and remaining[0] <= 1.5
    assert "sim1: reading" in output or "sim1: writing" in output
    (written,) = re.findall(r"sim1: wrote (\S+)", output)
    assert Path(written).parent == tmp_path / "data" / "sim1"
    assert fits.getheader(written)["EXPTIME"] == 1.5


async def test_expose_via_actor_reports_failure_and_absence(served):
    code, output = await cli(
        "-c", str(served), "expose", "1", "--camera", "nocam", "--via-actor"
    )
    assert code == 1 and "Unknown camera 'nocam'" in output, output
    started = time.monotonic()
    code, output = await cli(
        "-c", str(served), "--name", "nobody_here", "expose", "0.1", "--via-actor",
        "--timeout", "2",
    )  # fmt: skip
    assert code == 1, output
    assert "actor nobody_here is not connected to the broker" in output
    assert "DEBUG" not in output
    assert time.monotonic() - started < 20


async def test_status_pretty_and_json(served):
    code, output = await cli("-c", str(served), "status")
    json_code, json_output = await cli("-c", str(served), "status", "--json")
    assert code == 0, output
    assert "sim1 (SIM-1): connected" in output and "sim2 (SIM-2): connected" in output
    assert re.search(r"temperature\s+-?[0-9.]+ °C, set point", output)
    assert re.search(r"binning\s+1x1, area x 1-64, y 1-48", output)
    assert "sim1: idle" in output
    assert json_code == 0, json_output
    rows = [json.loads(line) for line in json_output.splitlines() if line]
    assert {row["camera"] for row in rows} == {"sim1", "sim2"}
    assert all(row["status"]["connected"] for row in rows)


def test_two_cameras_share_one_line_that_fits_the_terminal(tmp_path):
    config = write_config(tmp_path)
    code, output = run_in_pty(["-c", str(config), "expose", "1"])
    assert code == 0, output
    live = [
        chunk.split("\x1b[K")[0]
        for chunk in output.split("\r")
        if "left" in chunk or "done" in chunk
    ]
    assert live and all(len(line) <= 79 for line in live), max(live, key=len)
    assert any("sim1:" in line and "sim2:" in line for line in live)
    assert len(re.findall(r"sim[12]: wrote ", output)) == 2
