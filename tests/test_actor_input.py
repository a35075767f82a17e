"""Bad input always gets a terminal `f` reply quickly, and the actor survives."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import aio_pika
import pytest
from actor_fixtures import send


async def publish_raw(client, actor, body: bytes, timeout: float = 5.0):
    """Publishes a raw command message; returns (terminal reply, seconds)."""
    command_id = str(uuid.uuid4())
    done: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_reply(reply) -> None:
        if reply.command_id == command_id and reply.message_code in ":f!":
            if not done.done():
                done.set_result(reply)

    client.add_reply_callback(on_reply)
    try:
        start = time.perf_counter()
        await client.connection.exchange.publish(
            aio_pika.Message(
                body,
                headers={"command_id": command_id, "commander_id": client.name},
            ),
            routing_key=f"command.{actor.name}",
        )
        reply = await asyncio.wait_for(done, timeout)
        return reply, time.perf_counter() - start
    finally:
        client.remove_reply_callback(on_reply)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"this is not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b'["a list"]', "command_string"),
        (b'{"command": "status"}', "command_string"),
        (b'{"command_string": 42}', "command_string"),
    ],
)
async def test_malformed_bodies_fail(actor, client, body, message):
    reply, _ = await publish_raw(client, actor, body)
    assert reply.message_code == "f"
    assert message in reply.body["error"]
    assert (await send(client, actor, "ping")).status.did_succeed


async def test_oversized_command_refused_fast(actor, client):
    """A 1 MiB command is refused in under 50 ms (median of 20, over the broker)."""
    times = []
    for _ in range(20):
        body = b'{"command_string": "status ' + b"x" * (1024 * 1024) + b'"}'
        reply, elapsed = await publish_raw(client, actor, body)
        assert reply.message_code == "f"
        assert "over the 65536-byte limit" in reply.body["error"]
        times.append(elapsed)
    assert max(times) < 0.5
    assert statistics.median(times) < 0.05, sorted(times)
    assert (await send(client, actor, "ping", time_limit=2)).status.did_succeed


@pytest.mark.parametrize(
    ("command_string", "message"),
    [
        ("", "Empty command"),
        ("   ", "Empty command"),
        ("frobnicate now", "No such command"),
        ('expose "sim1 1', "Cannot parse command"),
        ("expose --count abc 1", "Invalid value for '-c' / '--count'"),
        ("expose --nonsense 1", "No such option: --nonsense"),
        ("expose", "EXPTIME is required"),
        ("expose nosuchcam 1", "Unknown camera 'nosuchcam'"),
    ],
)
async def test_bad_commands_fail_with_clear_error(
    actor, client, command_string, message
):
    start = time.perf_counter()
    command = await send(client, actor, command_string, time_limit=5)
    elapsed = time.perf_counter() - start
    assert command.status.did_fail
    errors = [r.message["error"] for r in command.replies if "error" in r.message]
    assert any(message in str(error) for error in errors), errors
    assert elapsed < 0.5
    assert (await send(client, actor, "ping", time_limit=2)).status.did_succeed
