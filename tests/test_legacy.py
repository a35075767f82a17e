"""The Tron (legacy TCP) interface beside the AMQP actor, on the same cameras."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import wait_for
from astropy.io import fits

from actor.legacy import LegacyCameraActor, legacy_value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LegacyClient:
    """A raw TCP client of the legacy protocol; commands may overlap."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.writer = writer
        self.lines: list[str] = []
        self.changed = asyncio.Condition()
        self.reading = asyncio.create_task(self._read(reader))

    @classmethod
    async def connect(cls, port: int) -> LegacyClient:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionResetError):  # counts as the end
            await self._lines(reader)

    async def _lines(self, reader: asyncio.StreamReader) -> None:
        while line := (await reader.readline()).decode():
            async with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def replies_to(self, command_id: int) -> list[str]:
        return [
            line
            for line in self.lines
            if len(line.split(" ")) >= 3 and line.split(" ")[1] == str(command_id)
        ]

    async def command(
        self, text: str, command_id: int, timeout: float = 20
    ) -> list[str]:
        """Sends ``text`` as command ``command_id``; its lines up to the end."""
        self.writer.write(f"APO.Craig {command_id} {text}\n".encode())
        await self.writer.drain()

        def done() -> bool:
            assert not self.reading.done(), "the actor closed the connection"
            mine = self.replies_to(command_id)
            return bool(mine) and mine[-1].split(" ")[2] in (":", "f", "!")

        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(done)
        return self.replies_to(command_id)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
        await asyncio.wait_for(self.reading, 5)


def keyword_values(lines: list[str], name: str) -> list[list[str]]:
    """The comma-separated values of keyword ``name`` in reply lines."""
    found = []
    for line in lines:
        body = line.split(" ", 3)[3] if line.count(" ") >= 3 else ""
        for item in body.split("; "):
            key, _, value = item.partition("=")
            if key == name:
                found.append(value.split(","))
    return found


@pytest.fixture
async def both(tmp_path):
    """An AMQP actor and its legacy interface on one camera system."""
    config = actor_config(tmp_path)
    config["actor"]["legacy"] = {"host": "127.0.0.1", "port": free_port()}
    actor = await start_actor(config)
    legacy = await LegacyCameraActor.beside(actor, config).start()
    client = await LegacyClient.connect(legacy.port)
    yield actor, legacy, client
    await client.close()
    await legacy.stop()
    await actor.stop()


def test_legacy_values():
    assert legacy_value({"camera": "sim1", "x": None, "ok": True}) == [
        "sim1",
        "?",
        True,
    ]
    # Nested or variable-length members stay one value: positions never move.
    nested = legacy_value({"a": {"b": 1, "c": [2, 3]}, "d": "x"})
    assert nested == ['"{\\"b\\": 1, \\"c\\": [2, 3]}"', "x"]
    assert legacy_value("'0.1.0'") == "'0.1.0'"  # already quoted by CLU
    assert legacy_value("20 °C") == '"20 °C"'  # not \\u00b0
    assert legacy_value("two words") == '"two words"'
    assert legacy_value("a,b") == '"a,b"'
    assert legacy_value(1.5) == 1.5


async def test_bias_over_raw_tcp(both, tmp_path):
    _, _, client = both
    lines = await client.command("expose sim1 0.1 --bias", 5)
    codes = [line.split(" ")[2] for line in lines]
    assert codes[0] == ">" and codes[-1] == ":", lines
    assert all(line.split(" ")[1] == "5" for line in lines)
    (filename,) = keyword_values(lines, "filename")
    camera, _exposure_id, target, path, datasum, checksum, spooled = filename
    assert camera == "sim1" and spooled == "F"
    assert target == path and Path(path).parent == tmp_path / "data" / "sim1"
    with fits.open(path, checksum=True) as hdus:
        assert hdus[0].header["IMAGETYP"] == "bias"
        assert hdus[0].header["DATASUM"] == datasum.strip('"')
        assert hdus[0].header["CHECKSUM"] == checksum.strip('"')
        assert hdus[0].data.shape == (48, 64)
    # Broadcast keywords (events) reach legacy users too.
    assert any(" 0 " in line and "exposure_state=" in line for line in client.lines)


async def test_bad_command_fails_cleanly(both):
    _, _, client = both
    lines = await client.command("expose sim1 0.1 --nonsense", 7)
    assert lines[-1].split(" ")[2] == "f"
    assert "error=" in lines[-1] and "No such option: --nonsense" in lines[-1]
    lines = await client.command("status sim1", 8)  # still answering
    assert lines[-1].split(" ")[2] == ":"
    (status,) = keyword_values(lines, "status")
    assert status[:4] == ["sim1", "SIM-1", "T", "F"]


async def test_amqp_and_legacy_at_once_on_different_cameras(both, client):
    actor, _, legacy_client = both
    sim1 = actor.camera_system.get_camera(name="sim1")
    sim2 = actor.camera_system.get_camera(name="sim2")
    amqp = asyncio.create_task(send(client, actor, "expose sim1 1", time_limit=20))
    legacy = asyncio.create_task(legacy_client.command("expose sim2 1", 11))
    # Both integrate at the same time: neither interface waits for the other.
    await wait_for(
        lambda: (
            sim1.progress.phase.value == "integrating"
            and sim2.progress.phase.value == "integrating"
        )
    )
    # Same state: the legacy side sees the AMQP exposure running.
    lines = await legacy_client.command("status sim1", 12)
    (status,) = keyword_values(lines, "status")
    assert status[3] == "T", "sim1 should be exposing"
    command, legacy_lines = await asyncio.gather(amqp, legacy)
    assert command.status.did_succeed, command.replies[-1].message
    assert legacy_lines[-1].split(" ")[2] == ":", legacy_lines
    (amqp_file,) = keywords(command, "filename")
    (legacy_file,) = keyword_values(legacy_lines, "filename")
    assert Path(amqp_file["path"]).exists() and amqp_file["camera"] == "sim1"
    assert Path(legacy_file[3]).exists() and legacy_file[0] == "sim2"
    # A busy camera is busy for both interfaces.
    amqp = asyncio.create_task(send(client, actor, "expose sim1 1", time_limit=20))
    await wait_for(lambda: sim1.exposing)
    lines = await legacy_client.command("expose sim1 0.1", 13)
    assert lines[-1].split(" ")[2] == "f" and "busy" in lines[-1]
    assert (await amqp).status.did_succeed


async def test_defaults_are_shared(both, client):
    actor, legacy, legacy_client = both
    lines = await legacy_client.command("set-default sim2", 21)
    assert lines[-1].split(" ")[2] == ":"
    assert actor.default_cameras == ["sim2"] == legacy.default_cameras
    command = await send(client, actor, "status")
    assert keywords(command, "default_cameras") == [["sim2"]]


async def test_launcher_serves_both_interfaces(tmp_path):
    config = actor_config(tmp_path)
    port = free_port()
    config["actor"]["legacy"] = {"host": "127.0.0.1", "port": port}
    config["actor"]["log_dir"] = None
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "actor", "-c", str(path), "actor", "--foreground"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        client = None
        async with asyncio.timeout(30):
            while client is None:
                assert process.poll() is None, process.stderr.read().decode()
                try:
                    client = await LegacyClient.connect(port)
                except OSError:
                    await asyncio.sleep(0.1)  # polls a process that is starting
        lines = await client.command("ping", 1)
        assert lines[-1].split(" ")[2] == ":" and "text=Pong." in lines[-1]
        await client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, process.stderr.read().decode()


async def test_oversized_lines_are_refused_and_the_session_survives(both):
    _, legacy, client = both
    lines = await client.command("ping " + "x" * 70_000, 31)
    assert lines[-1].split(" ")[2] == "f" and "70" in lines[-1], lines
    assert "over the 65536-byte limit" in lines[-1]
    lines = await client.command("ping", 32)  # same connection, still served
    assert lines[-1].split(" ")[2] == ":"
    # A line over the reader's limit closes that connection cleanly.
    other = await LegacyClient.connect(legacy.port)
    other.writer.write(b"1 ping " + b"y" * (2 << 20) + b"\n")
    await other.writer.drain()
    await asyncio.wait_for(other.reading, 10)  # the actor closed it
    await wait_for(lambda: len(legacy.transports) == 1)  # and forgot the user
    lines = await client.command("ping", 33)
    assert lines[-1].split(" ")[2] == ":"


async def test_legacy_shares_the_actors_settings(tmp_path):
    config = actor_config(tmp_path)
    config["actor"]["legacy"] = {"host": "127.0.0.1", "port": free_port()}
    config["actor"]["quicklook"] = {"enabled": False}
    actor = await start_actor(config)
    legacy = await LegacyCameraActor.beside(actor, config).start()
    client = await LegacyClient.connect(legacy.port)
    try:
        assert legacy.quicklook is actor.quicklook and not legacy.quicklook.enabled
        assert legacy.data_dir == actor.data_dir == tmp_path / "data"
        lines = await client.command("expose sim1 0.1 --bias", 41)
        assert lines[-1].split(" ")[2] == ":", lines
        assert not keyword_values(lines, "frame_stats")
        assert not list((tmp_path / "data").rglob("*.png"))
    finally:
        await client.close()
        await legacy.stop()
        await actor.stop()


def test_a_taken_legacy_port_fails_before_the_actor_starts(tmp_path):
    config = actor_config(tmp_path)
    config["actor"]["log_dir"] = None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config["actor"]["legacy"] = {"host": "127.0.0.1", "port": port}
        path = tmp_path / "camactor.yml"
        path.write_text(yaml.safe_dump(config))
        result = subprocess.run(
            [sys.executable, "-m", "actor", "-c", str(path), "actor", "--foreground"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"actor.legacy: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
