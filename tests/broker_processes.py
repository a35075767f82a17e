"""A private RabbitMQ node for the tests that stop and restart the broker.

The broker on 127.0.0.1:5672 is shared by every other test (and by anyone else
on the machine), so it is never stopped. The broker-restart tests get their own
node instead, ``camactor-test-<pid>@localhost``, from the same Debian package
(``rabbitmq-server``, installed by ``scripts/ensure_broker.sh``):

- everything it writes (database, logs, Erlang cookie, configuration) is in a
  temporary directory, and its ``HOME`` is there too, so nothing of the user or
  of the shared broker is read or changed;
- it listens on 127.0.0.1 only, on free ports: AMQP, Erlang distribution and a
  private ``epmd`` (a child of this fixture, not the system-wide daemon);
- no plugin is enabled (no management listener);
- it runs in the foreground as a child of pytest's main thread, through
  ``setpriv --pdeathsig KILL``. ``rabbitmq-server`` with
  ``RABBITMQ_ALLOW_INPUT`` ``exec``s the Erlang VM, so the VM itself is the
  child and the kernel kills it when pytest dies, however it dies. Its stdin is
  a pipe that only this process holds open. Teardown stops it with
  ``rabbitmqctl stop`` and kills its process group if it is still there.

`RabbitNode.stop_app` and `RabbitNode.start_app` are the fault injection: the
node keeps running, its AMQP listener goes away and every connection to it is
closed, as in a broker restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from indi_processes import _dies_with_pytest, _stop

#: Where Debian's rabbitmq-server package installs the scripts. The wrappers in
#: /usr/sbin switch to the ``rabbitmq`` user when run as root; these do not.
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")

_TOOLS = ("epmd", "setpriv")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


class RabbitNode:
    """A private RabbitMQ node on free loopback ports.

    Parameters
    ----------
    workdir
        A scratch directory that holds everything the node writes.
    """

    host = "127.0.0.1"
    user = "guest"
    password = "guest"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.name = f"camactor-test-{os.getpid()}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self._epmd: subprocess.Popen | None = None
        self._server: subprocess.Popen | None = None
        self._log: Path = workdir / "server.out"

    @property
    def broker(self) -> dict[str, object]:
        """Connection keywords of a CLU actor or client for this node."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
        }

    @property
    def pid(self) -> int | None:
        """The process id of the node's Erlang VM (`None` if not running)."""
        if self._server is None or self._server.poll() is not None:
            return None
        return self._server.pid

    def env(self) -> dict[str, str]:
        """The environment of the node and of ``rabbitmqctl`` for it."""
        work = self.workdir
        loopback = "-kernel inet_dist_use_interface {127,0,0,1}"
        return {
            **os.environ,
            "HOME": str(work / "home"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": loopback,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(work / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(work / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(work / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(work / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(work / "mnesia"),
            "RABBITMQ_LOG_BASE": str(work / "log"),
            "RABBITMQ_PID_FILE": str(work / "node.pid"),
            "RABBITMQ_ALLOW_INPUT": "1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback,
        }

    def _write_files(self) -> None:
        work = self.workdir
        home = work / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex().upper())
        cookie.chmod(0o400)
        (work / "rabbitmq-env.conf").write_text("")
        (work / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        (work / "enabled_plugins").write_text("[].\n")

    def start(self, timeout: float = 90.0) -> None:
        """Starts epmd and the node; returns once AMQP connections are accepted."""
        missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
        server = RABBITMQ_BIN / "rabbitmq-server"
        if not server.exists():
            missing.append(str(server))
        if missing:
            pytest.fail(
                f"Missing {', '.join(missing)}: run 'make broker' (it installs "
                "Debian's rabbitmq-server and erlang) or "
                "'apt-get install rabbitmq-server'.",
                pytrace=False,
            )
        self._write_files()
        env = self.env()
        self._epmd = subprocess.Popen(
            _dies_with_pytest(
                ["epmd", "-address", "127.0.0.1", "-port", str(self.epmd_port)]
            ),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        with self._log.open("wb") as log:
            self._server = subprocess.Popen(
                _dies_with_pytest([str(server)]),
                env=env,
                stdin=subprocess.PIPE,  # the Erlang shell's input; never written
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_listening(timeout)

    def wait_listening(self, timeout: float = 60.0) -> None:
        """Waits until the node accepts AMQP connections (fails the test if not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(self.port):
                return
            if self._server is None or self._server.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(
            f"RabbitMQ node {self.name} did not accept connections on port "
            f"{self.port} within {timeout:g} s (exit code "
            f"{None if self._server is None else self._server.poll()}). "
            f"Its output:\n{self.output()}",
            pytrace=False,
        )

    def output(self, tail: int = 4000) -> str:
        """The end of the node's console output and log, for failure messages."""
        texts = [self._log.read_text(errors="replace")] if self._log.exists() else []
        for path in sorted((self.workdir / "log").glob("*.log")):
            texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)[-tail:]

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Runs ``rabbitmqctl -n <node> ARGS`` and returns its output."""
        command = [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args]
        try:
            done = subprocess.run(
                _dies_with_pytest(command),
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(command)} took over {timeout:g} s.", pytrace=False)
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}",
                pytrace=False,
            )
        return done.stdout

    def stop_app(self) -> None:
        """Stops the RabbitMQ application: every connection is closed."""
        self.ctl("stop_app")
        if port_open(self.port):
            pytest.fail(f"Port {self.port} still open after stop_app.", pytrace=False)

    def start_app(self) -> None:
        """Starts the RabbitMQ application again; returns once it listens."""
        self.ctl("start_app")
        self.wait_listening(30.0)

    def bindings(self) -> list[tuple[str, str, str]]:
        """The (source exchange, queue, routing key) bindings of the node."""
        text = self.ctl(
            "list_bindings",
            "--quiet",
            "--no-table-headers",
            "source_name",
            "destination_name",
            "routing_key",
        )
        rows = [line.split("\t") for line in text.splitlines() if line.strip()]
        return [(row[0], row[1], row[2]) for row in rows if len(row) == 3]

    def stop(self) -> None:
        """Stops the node and epmd; nothing of them is left running."""
        if self.pid is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    _dies_with_pytest(
                        [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "stop"]
                    ),
                    env=self.env(),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                )
        if self._server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._server.pid, signal.SIGKILL)
            _stop(self._server, group=True)
        if self._epmd is not None:
            _stop(self._epmd, group=True)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._epmd.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A private RabbitMQ node that the test may stop and restart at will."""
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    try:
        node.start()
        yield node
    finally:
        node.stop()
