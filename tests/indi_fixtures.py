"""An INDI CCD simulator in a loopback-only network namespace, bridged to the host.

indiserver has no bind-address option and listens on every interface, so it runs
in a private network namespace with only ``lo`` (``unshare -n``). The backend
under test runs in the pytest process, in the host namespace, because the actor
also needs RabbitMQ on the host's loopback. Two small forwarders bridge them
without exposing the server::

    backend -> 127.0.0.1:<free port>  (host forwarder, host namespace)
            -> <tmp>/indi.sock         (a filesystem unix socket: both see it)
            -> 127.0.0.1:7624          (namespace forwarder -> indiserver)

indiserver's own ``-u`` socket is abstract, hence per namespace, so it cannot be
the bridge. The namespace is held by the namespace forwarder; indiserver is
started in it with ``nsenter`` and can be killed and restarted at will.

Nothing outlives pytest, even when it is killed: every process is started with
``setpriv --pdeathsig KILL``, so the kernel kills it when pytest dies;
indiserver's drivers then read end of file and exit (a stopped driver is sent
SIGHUP by the kernel, its process group being orphaned), and the forwarders
also exit when their stdin closes. Teardown kills indiserver's process group.

The forwarder and the process helpers are in ``indi_processes``.

If a tool is missing or the namespace cannot be made, the fixtures fail loudly:
they never skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from indi_processes import _FORWARDER, _dies_with_pytest, _read_ready, _stop, children

DEVICE = "CCD Simulator"
#: The port indiserver listens on inside the namespace.
NS_PORT = 7624
#: Polling period the fixture gives the driver (ms); short exposures are late
#: by up to one period.
POLLING_MS = 100

DRIVER = "indi_simulator_ccd"

_TOOLS = ("indiserver", DRIVER, "unshare", "nsenter", "setpriv", "ip")


class IndiServer:
    """indiserver + indi_simulator_ccd in a private network namespace.

    Parameters
    ----------
    workdir
        A scratch directory: HOME of the driver, logs and the bridge socket.

    Attributes
    ----------
    host, port
        Where the backend connects (the host side of the bridge).
    """

    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_path = workdir / "indi.sock"
        self.port = 0
        self._namespace: subprocess.Popen | None = None
        self._bridge: subprocess.Popen | None = None
        self._server: subprocess.Popen | None = None
        self._starts = 0

    def open(self) -> None:
        """Creates the namespace and both forwarders (fails loudly)."""
        missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
        if missing:
            pytest.fail(
                f"INDI backend tests need {', '.join(missing)} (Debian: "
                "apt-get install -y indi-bin util-linux iproute2; `make devices` "
                "installs indi-bin).",
                pytrace=False,
            )
        inner = (
            "ip link set lo up && exec "
            f"{sys.executable} -c \"$FORWARDER\" 'unix:{self.socket_path}' "
            f"'tcp:127.0.0.1:{NS_PORT}'"
        )
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        self._namespace = subprocess.Popen(
            _dies_with_pytest(["unshare", "-n", "sh", "-c", inner]),
            env={**os.environ, "FORWARDER": _FORWARDER},
            stderr=subprocess.PIPE,
            **pipes,
        )
        _read_ready(self._namespace, "network namespace (unshare -n, needs root)")
        self._bridge = subprocess.Popen(
            _dies_with_pytest(
                [
                    sys.executable,
                    "-c",
                    _FORWARDER,
                    f"tcp:{self.host}:0",
                    f"unix:{self.socket_path}",
                ]
            ),
            stderr=subprocess.PIPE,
            **pipes,
        )
        self.port = _read_ready(self._bridge, "host forwarder")

    @property
    def running(self) -> bool:
        """Whether indiserver is running."""
        return self._server is not None and self._server.poll() is None

    def start(
        self,
        configure: bool = True,
        timeout: float = 20.0,
        drivers: tuple[str, ...] = (DRIVER,),
    ) -> None:
        """Starts indiserver in the namespace and waits until the CCD answers.

        Parameters
        ----------
        configure
            Set ``POLLING_PERIOD.PERIOD_MS`` to `POLLING_MS`.
        timeout
            Seconds for the driver to define its properties.
        drivers
            The drivers indiserver runs, in this order (one must be `DRIVER`).
        """
        assert self._namespace is not None, "open() first"
        if self.running:
            raise RuntimeError("indiserver is already running")
        self._starts += 1
        log = open(self.workdir / f"indiserver-{self._starts}.log", "wb")
        with log:
            self._server = subprocess.Popen(
                _dies_with_pytest(
                    [
                        "nsenter",
                        f"--net=/proc/{self._namespace.pid}/ns/net",
                        "--",
                        "indiserver",
                        "-p",
                        str(NS_PORT),
                        *drivers,
                    ]
                ),
                env={**os.environ, "HOME": str(self.home)},
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout)
        if configure:
            self.set_number("POLLING_PERIOD", "PERIOD_MS", POLLING_MS)

    def kill(self) -> None:
        """Kills indiserver and its driver (SIGKILL to their process group)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._server.pid, signal.SIGCONT)  # type: ignore[union-attr]
        _stop(self._server, group=True)
        self._server = None

    def freeze(self, frozen: bool = True) -> None:
        """Stops (SIGSTOP) or continues (SIGCONT) indiserver and its driver.

        A frozen server keeps its sockets open but never answers: only a ping
        can tell it is gone.
        """
        assert self._server is not None and self.running
        os.killpg(self._server.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def pid(self, process: str = DRIVER) -> int:
        """The process id of ``"indiserver"`` or of one of its drivers."""
        assert self._server is not None and self.running
        if process == "indiserver":
            return self._server.pid
        for pid in children(self._server.pid):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if Path(argv[0].decode()).name == process:
                    return pid
        raise LookupError(f"indiserver runs no {process}")

    def freeze_one(self, process: str = DRIVER, frozen: bool = True) -> None:
        """Stops (SIGSTOP) or continues one process: a driver, or indiserver.

        A busy driver (e.g. a blocking USB readout) looks like a stopped one:
        indiserver still runs, but the driver answers nothing, pings included.
        A stopped indiserver holds back what its drivers send.
        """
        os.kill(self.pid(process), signal.SIGSTOP if frozen else signal.SIGCONT)

    def pids(self) -> dict[str, int]:
        """The process ids of both forwarders, indiserver and its CCD driver."""
        started = [self._namespace, self._bridge, self._server]
        names = ("namespace", "bridge", "indiserver")
        pids = {n: p.pid for n, p in zip(names, started, strict=True) if p is not None}
        if self.running:
            pids["driver"] = self.pid(DRIVER)
        return pids

    def restart(self, configure: bool = True, drivers: tuple[str, ...] = (DRIVER,)):
        """Kills and starts indiserver again (device state is lost)."""
        self.kill()
        self.start(configure=configure, drivers=drivers)

    def close(self) -> None:
        """Stops indiserver and both forwarders."""
        self.kill()
        _stop(self._bridge)
        _stop(self._namespace)
        self._bridge = self._namespace = None

    def log_text(self) -> str:
        """The logs of every indiserver started, for failure messages."""
        logs = sorted(self.workdir.glob("indiserver-*.log"))
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)

    # A minimal raw client through the bridge (no backend code involved).

    def _exchange(self, message: str, until: bytes, timeout: float) -> bytes:
        """Sends ``message`` and reads until ``until`` appears (or timeout)."""
        deadline = time.monotonic() + timeout
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(message.encode())
            received = b""
            while until not in received:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(received[-500:].decode(errors="replace"))
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                received += chunk
            return received

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.running:
                pytest.fail(
                    f"indiserver exited ({self._server and self._server.poll()}):\n"
                    f"{self.log_text()}",
                    pytrace=False,
                )
            try:
                self._exchange(
                    f'<getProperties version="1.7" device="{DEVICE}" '
                    'name="DRIVER_INFO"/>',
                    b"DRIVER_INTERFACE",
                    timeout=1.0,
                )
                return
            except (OSError, TimeoutError) as err:
                last = repr(err)
                time.sleep(0.1)
        pytest.fail(
            f"{DEVICE} did not answer within {timeout:g} s ({last}):\n"
            f"{self.log_text()}",
            pytrace=False,
        )

    def set_number(self, vector: str, member: str, value: float) -> None:
        """Sets a number property and waits for the driver to echo it."""
        message = (
            f'<getProperties version="1.7" device="{DEVICE}" name="{vector}"/>'
            f'<newNumberVector device="{DEVICE}" name="{vector}">'
            f'<oneNumber name="{member}">{value}</oneNumber></newNumberVector>'
        )
        try:
            self._exchange(message, b"setNumberVector", timeout=5.0)
        except (OSError, TimeoutError) as err:
            pytest.fail(f"Could not set {vector}.{member}: {err!r}", pytrace=False)

    def _definition(self, vector: str, kind: str) -> str:
        return self._exchange(
            f'<getProperties version="1.7" device="{DEVICE}" name="{vector}"/>',
            f"</def{kind}Vector>".encode(),
            timeout=5.0,
        ).decode()

    def get_number(self, vector: str, member: str) -> float:
        """Reads a number property directly from the server."""
        reply = self._definition(vector, "Number")
        match = re.search(
            rf'<defNumber name="{member}"[^>]*>\s*([-+0-9.eE]+)\s*</defNumber>', reply
        )
        assert match, reply
        return float(match.group(1))

    def get_state(self, vector: str, kind: str = "Number") -> str:
        """The state (Idle, Ok, Busy, Alert) of a property, from the server."""
        match = re.search(r'state="(\w+)"', self._definition(vector, kind))
        assert match
        return match.group(1)

    def get_switches_on(self, vector: str) -> list[str]:
        """The members of a switch property that are On, from the server."""
        reply = self._definition(vector, "Switch")
        return re.findall(r'<defSwitch name="(\w+)"[^>]*>\s*On\s*</defSwitch>', reply)


@pytest.fixture(scope="session")
def indi_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndiServer]:
    """The namespace and bridge, shared by the session (no server running)."""
    server = IndiServer(tmp_path_factory.mktemp("indi"))
    try:
        server.open()
        yield server
    finally:
        server.close()


@pytest.fixture
def indi_server(indi_bridge: IndiServer) -> Iterator[IndiServer]:
    """A fresh indiserver (new device state) for one test, killed afterwards."""
    indi_bridge.kill()
    indi_bridge.start()
    try:
        yield indi_bridge
    finally:
        indi_bridge.kill()
