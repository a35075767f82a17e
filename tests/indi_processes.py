"""Process helpers of the INDI fixtures: the forwarder and process lifetimes.

`indi_fixtures` bridges a loopback-only network namespace to the host with two
copies of `_FORWARDER`; every process it starts goes through
`_dies_with_pytest`, so none outlives pytest, and is ended by `_stop`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

#: A stdlib-only TCP/unix forwarder. argv: LISTEN CONNECT, each "tcp:HOST:PORT"
#: or "unix:PATH". Prints "READY <port>" once listening; exits when its stdin
#: closes (the fixture, or pytest, went away).
_FORWARDER = r"""
import asyncio, os, sys, threading

def parse(spec):
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        return kind, rest
    host, _, port = rest.rpartition(":")
    return kind, (host, int(port))

async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def main():
    listen, target = parse(sys.argv[1]), parse(sys.argv[2])

    async def handle(reader, writer):
        try:
            if target[0] == "unix":
                opening = asyncio.open_unix_connection(target[1])
            else:
                opening = asyncio.open_connection(*target[1])
            r2, w2 = await asyncio.wait_for(opening, 5)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    if listen[0] == "unix":
        server = await asyncio.start_unix_server(handle, listen[1])
        port = 0
    else:
        server = await asyncio.start_server(handle, *listen[1])
        port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()

threading.Thread(
    target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True
).start()
asyncio.run(main())
"""


def _read_ready(process: subprocess.Popen, what: str, timeout: float = 10.0) -> int:
    """Waits for a forwarder's ``READY <port>`` line and returns the port."""
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk
            match = re.search(rb"READY (\d+)", buffer)
            if match:
                return int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.02)
    error = b""
    if process.stderr is not None:
        os.set_blocking(process.stderr.fileno(), False)
        error = process.stderr.read() or b""
    pytest.fail(
        f"The {what} did not start within {timeout:g} s (exit code "
        f"{process.poll()}): {(buffer + error).decode(errors='replace').strip()}",
        pytrace=False,
    )


def _dies_with_pytest(command: list[str]) -> list[str]:
    """``command``, killed by the kernel when pytest's main thread exits.

    ``setpriv --pdeathsig`` sets PR_SET_PDEATHSIG and execs ``command``; the
    setting survives the ``exec`` of nsenter and indiserver (not setuid). The
    parent is the thread that started it: the fixtures run in the main thread.
    """
    return ["setpriv", "--pdeathsig", "KILL", "--", *command]


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (empty if it has exited)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _stop(process: subprocess.Popen | None, group: bool = False) -> None:
    """Terminates a process we started (its process group if ``group``)."""
    if process is None or process.poll() is not None:
        return
    try:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.terminate()
        process.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
