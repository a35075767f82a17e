"""Event notification: a notifier that fans events out to listener queues."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

__all__ = ["EventListener", "EventNotifier"]

log = logging.getLogger(__name__)

Callback = Callable[[enum.Enum, dict[str, Any]], Awaitable[Any] | Any]


class EventListener(asyncio.Queue):
    """An event queue with callbacks.

    Parameters
    ----------
    filter_events
        If set, only these events are queued; others are ignored.
    autostart
        Whether to start processing callbacks at once. Requires a running loop.
    """

    def __init__(
        self,
        filter_events: Iterable[enum.Enum] | None = None,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        self.filter_events = None if filter_events is None else set(filter_events)
        self.callbacks: list[Callback] = []
        self._waiters: list[tuple[set[enum.Enum], asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()
        self.listener_task: asyncio.Task | None = None
        if autostart:
            self.start_listening()

    def put_event(self, event: enum.Enum, payload: dict[str, Any]) -> None:
        """Queues an event, resolving any `wait_for` that waits for it."""
        if self.filter_events is not None and event not in self.filter_events:
            return
        for events, future in self._waiters:
            if event in events and not future.done():
                future.set_result({event})
        self.put_nowait((event, payload))

    def start_listening(self) -> None:
        """Starts the task that runs the callbacks for each queued event."""
        if self.listener_task is None or self.listener_task.done():
            self.listener_task = asyncio.get_running_loop().create_task(
                self._process_queue()
            )

    async def stop_listening(self) -> None:
        """Stops processing callbacks and cancels callback tasks in flight."""
        tasks = [t for t in (self.listener_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.listener_task = None

    def register_callback(self, callback: Callback) -> None:
        """Registers a callback to be called when an event is read.

        Parameters
        ----------
        callback
            A function or coroutine function called with the event and its payload.
            Coroutines are scheduled as tasks.
        """
        if callback not in self.callbacks:
            self.callbacks.append(callback)

    def remove_callback(self, callback: Callback) -> None:
        """Removes a callback."""
        if callback in self.callbacks:
            self.callbacks.remove(callback)

    async def wait_for(
        self,
        events: enum.Enum | Iterable[enum.Enum],
        timeout: float | None = None,
    ) -> set[enum.Enum] | bool:
        """Blocks until one of ``events`` is seen.

        Parameters
        ----------
        events
            The event or events to wait for.
        timeout
            Seconds to wait; `None` waits with no limit.

        Returns
        -------
        result
            The set of events seen, or `False` if the wait timed out.
        """
        wanted = {events} if isinstance(events, enum.Enum) else set(events)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        entry = (wanted, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters.remove(entry)

    async def _process_queue(self) -> None:
        while True:
            event, payload = await self.get()
            for callback in list(self.callbacks):
                try:
                    result = callback(event, payload)
                except Exception:  # a broken callback must not stop the others
                    log.exception("Event callback %r failed for %s.", callback, event)
                    continue
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)


class EventNotifier:
    """A registry of listeners to be notified of events."""

    def __init__(self) -> None:
        self.listeners: list[EventListener] = []

    def register_listener(self, listener: EventListener) -> None:
        """Registers an `EventListener` to which events are sent."""
        if listener not in self.listeners:
            self.listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        """Removes a listener."""
        if listener in self.listeners:
            self.listeners.remove(listener)

    def notify(self, event: enum.Enum, payload: dict[str, Any] | None = None) -> None:
        """Sends an event and its payload to every registered listener."""
        payload = {} if payload is None else payload
        for listener in list(self.listeners):
            listener.put_event(event, dict(payload))
