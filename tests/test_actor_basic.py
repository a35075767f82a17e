"""The actor over real RabbitMQ: basic commands."""

from __future__ import annotations

from actor_fixtures import keywords, send


async def test_ping_and_status(actor, client):
    command = await send(client, actor, "ping")
    assert command.status.did_succeed
    command = await send(client, actor, "status")
    assert command.status.did_succeed, command.replies[-1].message
    statuses = keywords(command, "status")
    assert {s["camera"] for s in statuses} == {"sim1", "sim2"}
    assert all(s["connected"] for s in statuses)
