"""ReplyOutbox policy against a fake broker: order, coalescing, bounds, holds.

The real broker restart is in test_broker_restart.py; these cover the cases a
restart cannot make on demand (a full outbox, hours of progress ticks, a
commander that never comes back) with the exceptions aio-pika really raises.
"""

from __future__ import annotations

import asyncio
import logging

import aiormq
import pytest
from actor_test_helpers import wait_for
from aiormq.abc import DeliveredMessage
from clu.base import Reply
from clu.command import Command
from clu.protocol import TopicListener
from pamqp.commands import Basic
from yarl import URL

from actor.outbox import ReplyOutbox, robust_url


class FakeBroker:
    """Publishes into ``delivered`` while up, for the routing keys it has."""

    def __init__(self) -> None:
        self.up = True
        self.queues = {"reply.broadcast", "reply.client.actor"}
        self.delivered: list[tuple[str, dict]] = []

    async def publish(self, reply: Reply, write_to_log: bool) -> None:
        await asyncio.sleep(0)  # a real publish yields to the loop
        if not self.up:
            raise aiormq.exceptions.ChannelInvalidStateError("channel closed")
        command = reply.command
        key = (
            "reply.broadcast"
            if command is None or reply.broadcast
            else f"reply.{command.commander_id}"
        )
        if key not in self.queues:
            returned = Basic.Return(312, "NO_ROUTE", "sdss_exchange", key)
            message = DeliveredMessage(returned, None, b"", None)
            raise aiormq.exceptions.PublishError(message, returned)
        self.delivered.append((key, reply.message))


def to(commander: str, **message) -> Reply:
    command = Command("expose", commander_id=commander, command_id=1)
    return Reply("i", message, command=command)


def broadcast(**message) -> Reply:
    return Reply("i", message, broadcast=True)


@pytest.fixture
async def broker_outbox():
    broker = FakeBroker()
    outbox = ReplyOutbox(
        broker.publish, logging.getLogger("test_outbox"), retry_interval=0.05
    )
    outbox.start()
    yield broker, outbox
    await outbox.stop()


async def test_replies_wait_in_order_and_states_coalesce(broker_outbox):
    broker, outbox = broker_outbox
    await outbox.send(to("client.actor", text="before"))
    broker.up = False
    outbox.connection_lost(ConnectionError("gone"))
    for tick in range(500):  # a long outage of progress ticks, two cameras
        await outbox.send(broadcast(exposure_state={"camera": "c1", "elapsed": tick}))
        await outbox.send(broadcast(exposure_state={"camera": "c2", "elapsed": tick}))
    await outbox.send(to("client.actor", filename={"path": "/a.fits"}))
    await outbox.send(to("client.actor", text="done"))
    assert len(outbox) == 4  # two latest states, filename, done
    assert outbox.coalesced == 998
    broker.up = True  # no reconnect callback: the retry finds it back
    await wait_for(lambda: len(outbox) == 0, timeout=2)
    assert broker.delivered == [
        ("reply.client.actor", {"text": "before"}),
        ("reply.broadcast", {"exposure_state": {"camera": "c1", "elapsed": 499}}),
        ("reply.broadcast", {"exposure_state": {"camera": "c2", "elapsed": 499}}),
        ("reply.client.actor", {"filename": {"path": "/a.fits"}}),
        ("reply.client.actor", {"text": "done"}),
    ]
    assert outbox.connected and len(outbox.outages) == 1


async def test_a_full_outbox_drops_broadcasts_first(broker_outbox):
    broker, outbox = broker_outbox
    outbox.max_size = 3
    broker.up = False
    outbox.connection_lost()
    await outbox.send(broadcast(text="old news"))
    for n in range(4):
        await outbox.send(to("client.actor", n=n))
    assert len(outbox) == 3 and outbox.dropped == 2
    broker.up = True
    outbox.connection_restored()
    await wait_for(lambda: len(outbox) == 0, timeout=2)
    assert [message for _, message in broker.delivered] == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
    ]


async def test_a_late_commander_gets_its_replies_in_order(broker_outbox):
    broker, outbox = broker_outbox
    broker.up = False
    outbox.connection_lost()
    await outbox.send(to("late.actor", n=1))
    await outbox.send(to("late.actor", n=2))
    await outbox.send(to("client.actor", n=3))
    broker.up = True
    outbox.connection_restored()
    await wait_for(lambda: len(broker.delivered) == 1, timeout=2)
    assert broker.delivered == [("reply.client.actor", {"n": 3})]  # not held up
    await outbox.send(to("late.actor", n=4))  # behind the held ones
    broker.queues.add("reply.late.actor")  # its replies queue is back
    await wait_for(lambda: len(outbox) == 0, timeout=2)
    late = [message for key, message in broker.delivered if key == "reply.late.actor"]
    assert late == [{"n": 1}, {"n": 2}, {"n": 4}]


async def test_a_commander_that_never_returns_is_dropped_after_hold_time(
    broker_outbox,
):
    broker, outbox = broker_outbox
    outbox.hold_time = 0.3
    broker.up = False
    outbox.connection_lost()
    await outbox.send(to("gone.actor", n=1))
    await outbox.send(to("gone.actor", n=2))
    broker.up = True
    outbox.connection_restored()
    await wait_for(lambda: len(outbox) == 0, timeout=2)
    assert outbox.expired == 2 and broker.delivered == []
    # Outside an outage, a reply nobody listens to is dropped at once.
    await outbox.send(to("gone.actor", n=3))
    assert len(outbox) == 0 and outbox.expired == 2


async def test_publishes_directly_when_up_and_errors_never_escape(broker_outbox):
    broker, outbox = broker_outbox
    await outbox.send(to("client.actor", n=1))
    assert broker.delivered == [("reply.client.actor", {"n": 1})]
    assert len(outbox) == 0

    async def broken(reply, write_to_log):
        raise TypeError("not JSON")

    outbox.publish = broken
    await outbox.send(to("client.actor", n=2))  # logged, not raised
    assert len(outbox) == 0


def test_robust_url_sets_the_reconnect_interval_unless_configured():
    listener = TopicListener(host="broker", port=5673, user="u", password="p:w")
    url = URL(robust_url(listener, 1.0))
    assert (url.host, url.port, url.user, url.password) == ("broker", 5673, "u", "p:w")
    assert url.path == "//" and url.query["reconnect_interval"] == "1.0"
    own = TopicListener(url="amqp://u:p@broker/vhost?reconnect_interval=7")
    assert robust_url(own, 1.0) == own.url
    plain = URL(robust_url(TopicListener(url="amqps://u:p@broker/vhost"), 2))
    assert plain.scheme == "amqps" and plain.path == "/vhost"
    assert plain.query["reconnect_interval"] == "2"
