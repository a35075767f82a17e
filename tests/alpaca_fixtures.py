"""Fixtures that run the real ``alpaca-simulators`` ASCOM Alpaca server.

The server runs on 127.0.0.1 on a free port, with an offline star catalogue (a
small SQLite ``gaia_sources`` table) so that light frames work without the
network. If the server cannot be started the tests fail loudly: they are never
skipped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

#: Seconds the server may take to answer after it is started.
START_TIMEOUT = 20.0

#: Where the simulator's telescope points by default (RA in hours, Dec in deg).
POINTING = (0.01, 89.0)

#: Camera 0 settings the tests rely on (on top of the package template).
CAMERA_SETTINGS = {
    "ccdtemperature": 10.0,  # a warm sensor, so that cooling takes time
    "setccdtemperature": 10.0,
    "cooleron": False,
    "cooling_time": 3.0,  # seconds to reach a new set point (exponential)
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_star_catalogue(path: Path, n_stars: int = 300, seed: int = 1) -> Path:
    """Writes a fake Gaia catalogue around `POINTING` (``gaia_sources`` table)."""
    rng = np.random.default_rng(seed)
    ra0, dec0 = POINTING[0] * 15.0, POINTING[1]
    dec = dec0 + rng.uniform(-0.05, 0.05, n_stars)
    ra = ra0 + rng.uniform(-0.05, 0.05, n_stars) / np.cos(np.radians(dec0))
    mag = rng.uniform(8.0, 14.0, n_stars)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE gaia_sources (ra REAL, dec REAL, pmra REAL, pmdec REAL, "
            "phot_g_mean_mag REAL)"
        )
        db.executemany(
            "INSERT INTO gaia_sources VALUES (?, ?, 0.0, 0.0, ?)",
            [
                (float(a), float(d), float(m))
                for a, d, m in zip(ra, dec, mag, strict=True)
            ],
        )
        db.commit()
    return path


def make_config(directory: Path, **camera: Any) -> Path:
    """Writes a simulator configuration (absolute path) using the catalogue."""
    template = files("alpaca_simulators").joinpath("config", "template.yaml")
    config = yaml.safe_load(template.read_text())
    config["devices"]["camera"][0].update({**CAMERA_SETTINGS, **camera})
    config["tap_source"] = str(make_star_catalogue(directory / "stars.db"))
    config["gaia_query_timeout"] = 10
    path = (directory / "alpaca.yaml").absolute()
    path.write_text(yaml.safe_dump(config))
    return path


#: ``prctl`` option: the signal a process gets when its parent dies (Linux).
PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGTERM when this process dies.

    Without it a server outlives a pytest that is killed (SIGKILL, OOM, a CI
    timeout) and keeps its port and CPU. `None` where ``prctl`` is missing.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def preexec() -> None:  # runs in the child between fork and exec
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(0)

    return preexec


def simulator_executable() -> str:
    """The ``alpaca-simulators`` script of this environment."""
    local = Path(sys.executable).with_name("alpaca-simulators")
    found = str(local) if local.exists() else shutil.which("alpaca-simulators")
    if found is None:
        pytest.fail(
            "alpaca-simulators is not installed; install the test extra "
            "(pip install -e '.[test]'). The Alpaca tests cannot run without it.",
            pytrace=False,
        )
    return found


class AlpacaServer:
    """A running ``alpaca-simulators`` process.

    Parameters
    ----------
    directory
        Where the configuration, the star catalogue and the log go.
    port
        The port; a free one if `None`.
    camera
        Camera 0 settings on top of `CAMERA_SETTINGS` (e.g. ``offsets``).
    """

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        camera: dict[str, Any] | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.host = "127.0.0.1"
        self._auto_port = port is None
        self.port = free_port() if port is None else port
        self._log_start = 0
        self._returncode: int | None = None
        self.config_path = make_config(directory, **(camera or {}))
        self.log_path = directory / "alpaca-simulators.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def camera_uid(self) -> str:
        """The UID `AlpacaCameraSystem` reports for camera 0 (no management API)."""
        return f"{self.host}:{self.port}/camera/0"

    def start(self) -> AlpacaServer:
        """Starts the server and waits until camera 0 answers (fails if not).

        A port taken meanwhile by another process is replaced by a new free one
        (up to 3 attempts) unless the port was given.
        """
        for _attempt in range(3):
            if self._launch():
                return self
            if not self._auto_port or "address already in use" not in self._log():
                break
            self.port = free_port()
        self._fail(f"exited with code {self._returncode}")
        return self  # pragma: no cover

    def _launch(self) -> bool:
        """Runs the server; `True` once it answers, `False` if it exited."""
        command = [
            simulator_executable(),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--config",
            str(self.config_path),
        ]
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=die_with_parent(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._returncode = self.process.poll()
            if self._returncode is not None:
                self.process = None
                return False
            # Our own server must be listening, not another one on this port.
            if "Uvicorn running on" in self._log():
                with contextlib.suppress(requests.RequestException):
                    url = f"{self.url}/api/v1/camera/0/connected"
                    if requests.get(url, timeout=1).status_code == 200:
                        return True
            time.sleep(0.1)
        self.stop()
        self._fail(f"did not answer within {START_TIMEOUT:g} s")
        return False  # pragma: no cover

    def _log(self) -> str:
        """The log of the current run."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def _fail(self, reason: str) -> None:
        log = self._log()[-3000:]
        pytest.fail(
            f"alpaca-simulators on {self.url} {reason}. Its log:\n{log}", pytrace=False
        )

    def stop(self) -> None:
        """Stops the server with SIGINT (killed if it takes over 10 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def kill(self) -> None:
        """Kills the server at once (SIGKILL), as a crash would."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    def reset(self) -> None:
        """Resets every device to the configuration (``GET /reload``)."""
        answer = requests.get(f"{self.url}/reload", timeout=5)
        answer.raise_for_status()


@pytest.fixture(scope="module")
def alpaca_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlpacaServer]:
    """An ``alpaca-simulators`` server shared by the tests of a module."""
    server = AlpacaServer(tmp_path_factory.mktemp("alpaca")).start()
    yield server
    server.stop()


@pytest.fixture
def alpaca(alpaca_server: AlpacaServer) -> AlpacaServer:
    """The module's server, reset to its configuration for this test."""
    alpaca_server.reset()
    return alpaca_server


@pytest.fixture
def own_alpaca_server(tmp_path: Path) -> Iterator[AlpacaServer]:
    """An ``alpaca-simulators`` server of this test alone (it may stop it)."""
    server = AlpacaServer(tmp_path / "alpaca").start()
    yield server
    server.stop()


def device_value(server: AlpacaServer, name: str) -> Any:
    """A camera 0 property read straight from the server (not through us)."""
    answer = requests.get(f"{server.url}/api/v1/camera/0/{name}", timeout=5)
    return answer.json()["Value"]


@pytest.fixture
def sent_puts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """Every PUT the backend's device objects send, as (attribute, form data)."""
    from camera_core.backends.alpaca_protocol import AlpacaCameraDevice

    sent: list[tuple[str, dict]] = []
    put = AlpacaCameraDevice._put

    def spy(self: Any, attribute: str, tmo: Any = None, **data: Any) -> Any:
        sent.append((attribute, data))
        return put(self, attribute, tmo, **data)

    monkeypatch.setattr(AlpacaCameraDevice, "_put", spy)
    return sent


def start_server_in_child(directory: Path) -> tuple[subprocess.Popen, int]:
    """Starts a server from a child Python process, as pytest would.

    Returns the child and the server's PID, so a test can kill the child
    without cleanup and see whether the server outlives it.
    """
    script = (
        "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1])\n"
        "from alpaca_fixtures import AlpacaServer\n"
        "server = AlpacaServer(Path(sys.argv[2])).start()\n"
        "print(server.process.pid, flush=True); time.sleep(120)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.strip():
        child.kill()
        pytest.fail(f"the child could not start a server (exit {child.wait()})")
    return child, int(line)


def process_ends(pid: int, timeout: float) -> bool:
    """Whether a process ends within ``timeout`` s (a zombie counts as ended)."""

    def running() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + timeout
    while running():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
