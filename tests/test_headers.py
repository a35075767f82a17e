"""Odd AMQP headers: every message gets a terminal reply, and the actor goes on.

CLU follows a true ``task`` header into a task path that never acknowledges the
message; with ``prefetch_count=1`` the actor then never received another command.
Each message below is published raw; its terminal reply is read from a queue
bound to ``reply.#`` (so replies routed to ``reply.None`` are seen too), and the
actor must answer ``ping`` right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from actor_fixtures import send

from actor.amqp import MAX_ID_LENGTH

PING = b'{"command_string": "ping"}'
TASKS = "tasks are not supported by this actor"
TYPE = "must be a string or an integer"

CASES: list[tuple[str, dict[str, Any] | None, bytes, str, str]] = [
    # name, headers (None: no headers at all), body, final code, error text
    ("task_true", {"task": True}, PING, "f", TASKS),
    ("task_yes", {"task": "yes"}, PING, "f", TASKS),
    ("task_one", {"task": 1}, PING, "f", TASKS),
    ("task_false_string", {"task": "false"}, PING, "f", TASKS),  # true for CLU
    ("task_dict_body", {"task": True}, b'{"task": "nope"}', "f", TASKS),
    ("task_not_json", {"task": True}, b"not json", "f", TASKS),
    ("task_huge_body", {"task": True}, b"x" * 300_000, "f", TASKS),
    ("task_false", {"task": False}, PING, ":", ""),
    ("task_zero", {"task": 0}, PING, ":", ""),
    ("no_command_id", {"command_id": None}, PING, ":", ""),
    ("no_commander_id", {"commander_id": None}, PING, ":", ""),
    ("no_headers", None, PING, ":", ""),
    ("dict_command_id", {"command_id": {"a": 1}}, PING, "f", TYPE),
    ("list_command_id", {"command_id": [1, 2]}, PING, "f", TYPE),
    ("float_command_id", {"command_id": 1.5}, PING, "f", TYPE),
    ("bool_command_id", {"command_id": True}, PING, "f", TYPE),
    ("int_command_id", {"command_id": 42}, PING, ":", ""),
    ("int_commander_id", {"commander_id": 12345}, PING, ":", ""),
    ("dict_commander_id", {"commander_id": {"x": 1}}, PING, "f", TYPE),
    ("long_command_id", {"command_id": "c" * 10_000}, PING, "f", "characters long"),
    ("huge_other_header", {"x-junk": "j" * 60_000}, PING, ":", ""),
    ("task_and_bad_id", {"task": True, "command_id": {"a": 1}}, PING, "f", TASKS),
]


@contextlib.asynccontextmanager
async def terminal_replies(client, actor) -> AsyncIterator[asyncio.Queue]:
    """The actor's terminal replies to anyone, in order, as (headers, body)."""
    channel = client.connection.channel
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(client.connection.exchange, routing_key="reply.#")
    replies: asyncio.Queue = asyncio.Queue()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            headers = message.headers or {}
            if headers.get("sender") == actor.name and headers.get("message_code") in (
                ":",
                "f",
            ):
                replies.put_nowait((headers, json.loads(message.body)))

    tag = await queue.consume(on_message)
    try:
        yield replies
    finally:
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)


async def test_odd_headers_get_a_terminal_reply(actor, client):
    async with terminal_replies(client, actor) as replies:
        for name, case_headers, body, code, text in CASES:
            marker = f"{name}-{uuid.uuid4().hex[:8]}"
            headers: dict[str, Any] | None = None
            if case_headers is not None:
                headers = {"commander_id": client.name, "command_id": marker}
                headers.update(case_headers)
                headers = {k: v for k, v in headers.items() if v is not None}
            await client.connection.exchange.publish(
                aio_pika.Message(body, headers=headers),
                routing_key=f"command.{actor.name}",
            )
            reply_headers, message = await asyncio.wait_for(replies.get(), 5)
            assert reply_headers["message_code"] == code, (name, message)
            assert text in message.get("error", ""), (name, message)
            if code == "f" and (headers or {}).get("command_id") == marker:
                assert reply_headers["command_id"] == marker, name
            ping = await send(client, actor, "ping", time_limit=5)
            assert ping.status.did_succeed, f"no ping after {name}"
            ping_headers, _ = await asyncio.wait_for(replies.get(), 5)
            assert ping_headers["command_id"] == ping.command_id, name
    assert MAX_ID_LENGTH < 10_000


class FakeMessage:
    """Enough of an incoming aio-pika message to count acknowledgements."""

    def __init__(self, headers: Any, body: bytes, broken: bool = False) -> None:
        self._headers = headers
        self.body = body
        self.broken = broken
        self.acks = 0

    @property
    def headers(self) -> Any:
        if self.broken:
            raise RuntimeError("corrupt header table")
        return self._headers

    @property
    def processed(self) -> bool:
        return self.acks > 0

    def info(self) -> dict[str, Any]:
        return {"headers": self.headers}

    async def ack(self) -> None:
        self.acks += 1


@pytest.mark.parametrize(
    ("headers", "body", "broken", "failed"),
    [
        ({"commander_id": "x", "command_id": "1"}, PING, False, False),
        ({"commander_id": "x", "command_id": "2", "task": True}, PING, False, True),
        ({"commander_id": "x", "command_id": "3"}, b"\xff", False, True),
        ({"commander_id": "x", "command_id": "4"}, PING, True, True),
    ],
)
async def test_every_message_is_acknowledged_once(actor, headers, body, broken, failed):
    message = FakeMessage(headers, body, broken)
    command = await actor.new_command(message)
    assert message.acks == 1
    assert command.status.did_fail is failed
    command = await actor.new_command(message)  # already acknowledged
    assert message.acks == 1
