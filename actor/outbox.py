"""Replies that outlive a broker outage, published in order once it is back.

CLU publishes each reply in its own task and an AMQP publish on a closed channel
fails at once: while RabbitMQ is down (restarted, ``stop_app``, network loss)
every reply would be lost, including the ``filename`` and the final ``:`` of an
exposure that goes on meanwhile. aio-pika's robust connection reconnects and
restores the exchange, queues, bindings and consumers, but it never replays a
failed publish.

`ReplyOutbox` sits in front of the publish. While the connection is up and
nothing is waiting, a reply is published at once, as before. Otherwise it is
queued, and one task publishes the queue in order once the broker is back:

- replies to a commander are kept, in order, up to ``max_size`` in all;
- broadcast status keywords (``exposure_state``, ``temperature``) are coalesced:
  only the latest of each camera is kept, so a long outage does not fill the
  queue with stale progress ticks;
- when the queue is full, the oldest broadcast is dropped first, then the
  oldest reply;
- for ``hold_time`` seconds after the broker is back, a reply to a commander
  whose replies queue is not back yet (the broker returns it unroutable) is
  kept and retried, with the commander's later replies behind it: a client
  reconnects on its own schedule (CLU's every 5 s) and still gets its replies
  in order. After that window, and outside outages, such a reply is dropped,
  as a commander that left is normal.

Outages and recoveries are logged with their duration and what was dropped.
Nothing here blocks the event loop: `ReplyOutbox.send` queues without waiting
and publishes are bounded by ``publish_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
from aio_pika.connection import make_url
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

__all__ = ["COALESCED_KEYWORDS", "ReplyOutbox", "robust_url"]

#: Broadcast keywords of which only the latest per camera is worth sending late.
COALESCED_KEYWORDS = frozenset({"exposure_state", "temperature"})

BROADCAST_KEY = "reply.broadcast"

Publish = Callable[[Any, bool], Awaitable[Any]]


def robust_url(listener: Any, reconnect_interval: float) -> str:
    """The broker URL of a CLU `~clu.protocol.TopicListener`, with aio-pika's
    ``reconnect_interval`` (its default is 5 s) set from the first connection.

    A ``reconnect_interval`` already in a configured URL wins.
    """
    if listener.url and "reconnect_interval" in URL(listener.url).query:
        return listener.url
    url = make_url(
        listener.url,
        host=listener.host,
        port=listener.port,
        login=listener.user,
        password=listener.password,
        virtualhost=listener.virtualhost,
        ssl=listener.ssl,
        reconnect_interval=reconnect_interval,
    )
    return str(url)


def routing_key(reply: Any) -> str:
    """The routing key CLU's AMQP actor publishes a reply with."""
    command = reply.command
    if command is None or reply.broadcast:
        return BROADCAST_KEY
    return f"reply.{command.commander_id}"


def coalesce_key(reply: Any) -> tuple[str, Any] | None:
    """``(keyword, camera)`` of a broadcast status reply, else `None`."""
    if routing_key(reply) != BROADCAST_KEY or len(reply.message) != 1:
        return None
    keyword, value = next(iter(reply.message.items()))
    if keyword in COALESCED_KEYWORDS and isinstance(value, dict):
        return (keyword, value.get("camera"))
    return None


@dataclasses.dataclass
class _Entry:
    seq: int
    reply: Any
    write_to_log: bool
    key: str
    coalesce: tuple[str, Any] | None
    logged: bool = False


class _Outcome:
    SENT = "sent"
    UNROUTABLE = "unroutable"
    LOST = "lost"
    BROKEN = "broken"


class ReplyOutbox:
    """Keeps replies while the broker is away and publishes them in order.

    Parameters
    ----------
    publish
        ``await publish(reply, write_to_log)`` publishes one CLU reply; it
        raises `aiormq.exceptions.PublishError` for an unroutable reply and a
        connection error when the broker is away.
    log
        Where outages, recoveries and dropped replies are logged.
    max_size
        Most replies kept at once.
    hold_time
        Seconds after a recovery during which unroutable replies to a
        commander are kept and retried.
    retry_interval
        Seconds between two publish attempts while the broker is away or a
        commander has not reconnected yet.
    publish_timeout
        Longest wait for one publish (and its confirmation).
    """

    def __init__(
        self,
        publish: Publish,
        log: logging.Logger | Any,
        max_size: int = 1000,
        hold_time: float = 30.0,
        retry_interval: float = 0.5,
        publish_timeout: float = 5.0,
    ) -> None:
        self.publish = publish
        self.log = log
        self.max_size = max_size
        self.hold_time = hold_time
        self.retry_interval = retry_interval
        self.publish_timeout = publish_timeout
        #: Whether the broker is believed reachable.
        self.connected = True
        #: Set by `stop`: the connection closing then is no outage.
        self.stopping = False
        #: Replies dropped, and broadcasts coalesced, since the last outage began.
        self.dropped = 0
        self.coalesced = 0
        #: Replies dropped because their commander was not back within hold_time.
        self.expired = 0
        #: Durations of the outages seen, in seconds (lost to published again).
        self.outages: list[float] = []
        self._entries: dict[int, _Entry] = {}
        self._latest: dict[tuple[str, Any], int] = {}
        self._seq = itertools.count()
        self._lost_at: float | None = None
        self._restored_at: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def recovering(self) -> bool:
        """Whether the broker is away or came back less than ``hold_time`` ago."""
        if not self.connected:
            return True
        restored = self._restored_at
        return restored is not None and time.monotonic() - restored < self.hold_time

    def start(self) -> None:
        """Starts the task that publishes queued replies."""
        self.stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def stop(self) -> None:
        """Stops publishing; replies still queued are dropped (and logged).

        Replies sent afterwards are published at once if the connection is
        still open, and dropped quietly once the actor closed it.
        """
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._entries:
            self.log.warning(
                f"Stopping with {len(self._entries)} replies not published "
                "(the broker was unreachable)."
            )
        self._entries.clear()
        self._latest.clear()

    async def send(self, reply: Any, write_to_log: bool = True) -> None:
        """Publishes a reply now, or queues it if the broker is away or busy."""
        key = routing_key(reply)
        entry = _Entry(next(self._seq), reply, write_to_log, key, coalesce_key(reply))
        started = self._task is not None
        if started and (self.recovering or self._entries):
            self._put(entry)  # behind the replies already waiting
            return
        outcome = await self._try(entry)
        if started and outcome is _Outcome.LOST:
            self._put(entry)

    def connection_lost(self, error: BaseException | None = None) -> None:
        """The broker connection closed: queue replies until it is back."""
        if self.stopping:  # the actor is closing it: not an outage
            self.log.debug(f"Reply not published: the actor is stopping ({error}).")
            return
        if not self.connected:
            return
        self.connected = False
        self._lost_at = time.monotonic()
        self._restored_at = None
        self.dropped = self.coalesced = 0
        self.log.warning(
            f"Lost the broker connection ({error or 'closed'}). Keeping up to "
            f"{self.max_size} replies, in order, until it is back."
        )

    def connection_restored(self) -> None:
        """The broker connection is back: publish what was queued."""
        if self.connected:
            return
        self.connected = True
        now = time.monotonic()
        self._restored_at = now
        outage = now - (self._lost_at if self._lost_at is not None else now)
        self.outages.append(outage)
        self.log.warning(
            f"Broker connection restored after {outage:.1f} s; publishing "
            f"{len(self._entries)} queued replies ({self.dropped} dropped, "
            f"{self.coalesced} stale broadcasts coalesced)."
        )
        self._wake.set()

    def _put(self, entry: _Entry) -> None:
        if entry.coalesce is not None:
            older = self._latest.pop(entry.coalesce, None)
            if older is not None and self._entries.pop(older, None) is not None:
                self.coalesced += 1
            self._latest[entry.coalesce] = entry.seq
        self._entries[entry.seq] = entry
        while len(self._entries) > self.max_size:
            self._drop_oldest()
        self._wake.set()

    def _drop_oldest(self) -> None:
        order = sorted(self._entries)
        victim = next(
            (s for s in order if self._entries[s].key == BROADCAST_KEY), order[0]
        )
        self._remove(victim)
        self.dropped += 1
        if self.dropped == 1:
            self.log.warning(
                f"Outbox full ({self.max_size} replies): dropping the oldest "
                "(broadcasts first)."
            )

    def _remove(self, seq: int) -> None:
        entry = self._entries.pop(seq, None)
        if entry is not None and entry.coalesce is not None:
            if self._latest.get(entry.coalesce) == seq:
                del self._latest[entry.coalesce]

    async def _try(self, entry: _Entry) -> str:
        """Publishes one entry and says how it went; never raises (but cancel)."""
        write_to_log = entry.write_to_log and not entry.logged
        entry.logged = True
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.publish(entry.reply, write_to_log)
        except aiormq.exceptions.PublishError as err:
            if not self.recovering or entry.key == BROADCAST_KEY:
                self.log.debug(f"Reply not delivered (no listener): {err}")
            return _Outcome.UNROUTABLE
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            self.connection_lost(ConnectionError("publish cancelled"))
            return _Outcome.LOST  # the connection closed under the publish
        except CONNECTION_EXCEPTIONS as err:
            self.connection_lost(err)
            return _Outcome.LOST
        except Exception as err:  # a reply that cannot be sent at all
            self.log.error(f"Cannot publish reply {entry.reply.message!r}: {err}")
            return _Outcome.BROKEN
        return _Outcome.SENT

    async def _drain(self) -> None:
        """Publishes the queue in order whenever there is something to send."""
        while True:
            timeout = self.retry_interval if self._entries else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            await self._publish_queued()

    async def _publish_queued(self) -> None:
        blocked: set[str] = set()  # commanders whose replies wait (in order)
        expired: dict[str, int] = {}
        for seq in sorted(self._entries):
            entry = self._entries.get(seq)
            if entry is None or entry.key in blocked:
                continue
            outcome = await self._try(entry)
            if outcome is _Outcome.LOST:
                return
            if not self.connected:  # the first publish since the outage worked
                self.connection_restored()
            if outcome is _Outcome.UNROUTABLE and entry.key != BROADCAST_KEY:
                if self.recovering:
                    blocked.add(entry.key)  # its commander may not be back yet
                    continue
                expired[entry.key] = expired.get(entry.key, 0) + 1
            self._remove(seq)
        for key, count in expired.items():
            self.expired += count
            self.log.warning(
                f"Dropped {count} replies to {key.removeprefix('reply.')}: its "
                f"replies queue was not back within {self.hold_time:g} s of the "
                "broker."
            )
