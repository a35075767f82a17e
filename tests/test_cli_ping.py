"""``camactor ping`` (the container health check) against the local broker."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid

import aio_pika
from actor_fixtures import BROKER
from process_helpers import run_process

from actor.config import ENV_VARS


async def ping(*args: str, timeout: float = 30) -> tuple[int, str, float]:
    """Runs ``camactor [args] ping``: exit status, output and seconds taken.

    The configuration is empty (every default), whatever etc/camactor.yml says.
    """
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    start = time.monotonic()
    status, output = await run_process(
        sys.executable, "-m", "actor", "-c", os.devnull, "--host", BROKER["host"],
        *args, env=env, timeout=timeout,
    )  # fmt: skip
    return status, output, time.monotonic() - start


async def test_ping_succeeds_when_the_actor_answers(actor):
    status, output, _ = await ping("--name", actor.name, "ping", "--timeout", "5")
    assert status == 0, output
    assert output.startswith(f"{actor.name} answered in ") and " ms." in output


async def test_ping_fails_at_once_without_the_actor():
    name = f"camnone_{uuid.uuid4().hex[:8]}"
    status, output, elapsed = await ping("--name", name, "ping", "--timeout", "20")
    assert status == 1
    assert f"Error: actor {name!r} on amqp://guest@127.0.0.1:5672" in output
    assert f"Failed routing message to consumer {name!r}." in output
    assert "Is the actor running" in output and "Traceback" not in output
    assert elapsed < 10  # the broker returns the command: no waiting for 20 s


async def test_ping_gives_up_on_a_stuck_actor_after_its_timeout():
    """A queue that takes the actor's commands and never answers."""
    name = f"camstuck_{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(
        host=BROKER["host"], login=BROKER["user"], password=BROKER["password"]
    )
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "sdss_exchange", aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key=f"command.{name}")
        status, output, elapsed = await ping("--name", name, "ping", "--timeout", "1.5")
        message = await queue.get(timeout=5)  # the ping did arrive
        assert b'"command_string": "ping"' in message.body
    finally:
        await connection.close()
    assert status == 1
    assert f"actor {name!r} did not answer a ping" in output
    assert "within 1.5 s" in output
    assert 1.5 <= elapsed < 1.5 + 10  # bounded: interpreter start-up aside


async def test_ping_names_an_unreachable_broker():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, output, elapsed = await ping("--port", str(port), "ping", "--timeout", "20")
    assert status == 1
    assert f"Error: cannot reach the broker at amqp://guest@127.0.0.1:{port}" in output
    assert "Check that RabbitMQ runs there" in output
    assert "Traceback" not in output and elapsed < 10
