"""Stock CLU clients: the `clu` shell and a client loading the actor's model."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from actor_fixtures import BROKER
from clu import AMQPClient

CLU = Path(sys.executable).with_name("clu")


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float) -> str:
    """Reads a stream until ``needle`` appears; fails after ``timeout`` seconds."""
    seen = ""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            chunk = await stream.read(4096)
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    return seen


async def test_stock_clu_shell_sees_status(actor):
    assert CLU.exists() or shutil.which("clu")
    proc = await asyncio.create_subprocess_exec(
        str(CLU),
        "-H",
        "127.0.0.1",
        "-n",
        "-t",
        actor.name,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        proc.stdin.write(f"{actor.name} status\n".encode())
        await proc.stdin.drain()
        output = await read_until(proc.stdout, f"{actor.name} :", timeout=20)
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [line.strip() for line in output.splitlines() if actor.name in line]
    # One reply per camera; the last one is the final ":" reply.
    statuses = [
        json.loads(line.split(f" {code} ", 1)[1])
        for line in lines
        for code in ("i", ":")
        if f' {code} {{"status"' in line
    ]
    assert {s["status"]["camera"] for s in statuses} == {"sim1", "sim2"}
    assert any(f"{actor.name} :" in line for line in lines)


async def test_clu_client_loads_actor_model(actor):
    client = AMQPClient(models=[actor.name], **BROKER)
    await client.start()
    try:
        model = client.models[actor.name]
        async with asyncio.timeout(10):
            while model.schema is None:
                await asyncio.sleep(0.05)
        assert "exposure_state" in model.schema["properties"]
        command = await client.send_command(actor.name, "status", time_limit=10)
        assert command.status.did_succeed
        # The client's model was updated from the replies.
        assert model["default_cameras"].value == []
    finally:
        await client.stop()
