"""A supervised connection to an INDI server, built on `indipyclient`.

`indipyclient.IPyClient` parses the INDI XML protocol and keeps a mapping of
devices and property vectors, but it does not notice a server that closed the
socket (its own timers fire after about 37 s) and it retries only every 5 s.
`INDIConnection` therefore runs one ``IPyClient`` at a time under its own
supervisor:

- before each attempt it probes the port, so a refused connection costs nothing;
- the server is *alive* once it has sent data on the new connection;
- end of stream on the socket or a ``ConnectionLost`` from the library mark it
  lost at once, and an unanswered ping (a ``getProperties`` for one small
  property of the devices in use) within 5 s: see
  `~camera_core.backends.indi_liveness`. Every pending waiter then fails with
  `~camera_core.exceptions.CameraConnectionError` and the lost callbacks run;
- a lost client is shut down and a fresh one is tried every ``retry_interval``.

There are no request ids in INDI: callers register a waiter (see
`~camera_core.backends.indi_waiters`) before sending, and wait for the state or
value they asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from indipyclient import IPyClient

from ..exceptions import CameraConnectionError, CameraError
from .indi_liveness import Liveness
from .indi_state import DeviceState
from .indi_waiters import Check, Waiters, confirm

__all__ = ["INDIConnection"]


class _Client(IPyClient):
    """An `IPyClient` that hands every event to its `INDIConnection`."""

    def __init__(self, owner: INDIConnection, host: str, port: int) -> None:
        super().__init__(indihost=host, indiport=port)
        self._owner = owner
        self.made = False
        self.lost = False
        # Liveness is ours; the library's 40 s response timer would only race it.
        self.set_vector_timeouts(timeout_enable=False)

    async def rxevent(self, event: Any) -> None:
        self._owner._on_event(self, event)

    async def warning(self, message: str) -> None:
        """The library's connection chatter, logged at debug level only.

        `INDIConnection` reports connections and losses itself.
        """
        self._owner.logger.debug(f"indipyclient: {message}")

    async def report(self, message: str) -> None:
        """As `warning`."""
        self._owner.logger.debug(f"indipyclient: {message}")

    def at_eof(self) -> bool:
        """Whether the server closed the stream (the library keeps polling it)."""
        reader = getattr(self, "_reader", None)
        return reader is not None and reader.at_eof()


class INDIConnection(DeviceState):
    """One INDI server: a supervised `IPyClient` with liveness and waiters.

    The device state as last received is read through `DeviceState`.

    Parameters
    ----------
    host, port
        Address of the indiserver.
    timeout
        Seconds to wait for the server to connect and answer, and the default
        time to wait for a device to confirm a request.
    logger
        Where to log connection changes.

    Attributes
    ----------
    error : str or None
        Why the server is not alive, if it is not.
    liveness : Liveness
        The ping policy (intervals and time limits).
    """

    #: Seconds between connection attempts while the server is away.
    retry_interval: float = 1.0
    #: Seconds between liveness checks.
    check_interval: float = 0.1

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7624,
        timeout: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.timeout = float(timeout)
        self.logger = logger or logging.getLogger("camera_core.indi")
        self.error: str | None = "not started"
        self._client: _Client | None = None
        self._task: asyncio.Task | None = None
        self._alive = asyncio.Event()
        self.liveness = Liveness()
        self._waiters = Waiters()
        self._listeners: list[Callable[[Any], None]] = []
        self._lost_callbacks: list[Callable[[str], None]] = []

    def __repr__(self) -> str:
        return f"<INDIConnection {self.address} alive={self.alive}>"

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return f"{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        """Whether the server is connected and answering."""
        return self._alive.is_set() and self._client is not None

    # Life cycle.

    def start(self) -> None:
        """Starts the supervisor (idempotent; needs a running event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        """Stops the supervisor and closes the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._alive.clear()
        self.error = "stopped"
        self._waiters.fail(self._lost_error("the connection was closed"))

    def ensure_alive(self) -> None:
        """Raises `~camera_core.exceptions.CameraConnectionError` if not alive."""
        if not self.alive:
            raise self._lost_error(self.error or "not connected")

    async def wait_alive(self, timeout: float | None = None) -> bool:
        """Waits until the server is alive; returns whether it is."""
        self.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                await self._alive.wait()
        return self.alive

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Registers ``callback(reason)``, called when a live server is lost."""
        self._lost_callbacks.append(callback)

    def add_listener(self, callback: Callable[[Any], None]) -> None:
        """Registers ``callback(event)``, called with every event received."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Any], None]) -> None:
        """Removes a listener registered with `add_listener`."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def transfer(self) -> contextlib.AbstractContextManager[None]:
        """Context: a device exposes or sends a BLOB, and may not answer pings."""
        return self.liveness.transfer()

    def use(self, device: str) -> None:
        """Marks ``device`` in use: pings go to it (see `Liveness.use`)."""
        self.liveness.use(device)

    def unuse(self, device: str) -> None:
        """Undoes one `use`."""
        self.liveness.unuse(device)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            reason = await self._probe()
            if reason is None:
                client = _Client(self, self.host, self.port)
                self._client = client
                run = loop.create_task(client.asyncrun())
                try:
                    reason = await self._watch(client, run)
                finally:
                    self._client = None
                    await self._stop_client(client, run)
            was_alive = self._alive.is_set()
            self._alive.clear()
            self.error = reason
            self._waiters.fail(self._lost_error(reason))
            if was_alive:
                self.logger.warning(f"INDI server {self.address} lost: {reason}")
                for callback in list(self._lost_callbacks):
                    try:
                        callback(reason)
                    except Exception:
                        self.logger.exception("INDI lost callback failed")
            await asyncio.sleep(self.retry_interval)

    async def _probe(self) -> str | None:
        """Checks that the port accepts connections (`None` if it does)."""
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as err:
            return f"cannot connect ({err or type(err).__name__})"
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return None

    async def _watch(self, client: _Client, run: asyncio.Task) -> str:
        """Watches a client until it is lost; returns why."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        liveness = self.liveness
        liveness.restart()
        while True:
            await asyncio.sleep(self.check_interval)
            now = loop.time()
            if run.done():
                return "the client stopped"
            if client.lost:
                return "the connection was closed"
            if client.made and client.at_eof():
                return "the server closed the connection"
            if not self._alive.is_set():
                if client.made and liveness.last_rx >= start:
                    self.error = None
                    self._alive.set()
                    self.logger.info(f"INDI server {self.address} connected.")
                elif now - start > self.timeout:
                    return f"no data within {self.timeout:g} s of connecting"
                continue
            lost = liveness.overdue(now)
            if lost:
                return lost
            if liveness.due(now):
                liveness.sent(now)
                await self._ping(client)

    async def _ping(self, client: _Client) -> None:
        """Asks the devices in use for one small property.

        With none in use, every device is asked (any answer will do); with none
        defined yet, the server is asked for everything.
        """
        defined = [name for name, device in client.items() if device.enable]
        for name in self.liveness.targets(defined):
            await client.send_getProperties(name, "DRIVER_INFO")
        if not defined:
            await client.send_getProperties()

    async def _stop_client(self, client: _Client, run: asyncio.Task) -> None:
        client.shutdown()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(2.0):
                await run

    def _on_event(self, client: _Client, event: Any) -> None:
        if client is not self._client:
            return  # a late event of a replaced client
        kind = getattr(event, "eventtype", None)
        if kind == "ConnectionMade":
            client.made = True
            return
        if kind == "ConnectionLost":
            client.lost = True
            return
        if getattr(event, "devicename", None) is None:
            return  # the library's own reports, or server-wide messages
        self.liveness.received(asyncio.get_running_loop().time())
        self._waiters.feed(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                self.logger.exception("INDI event listener failed")

    # Waiters.

    def waiter(self, check: Check, now: bool = True) -> asyncio.Future:
        """Registers a check called with every event until it returns a value.

        Parameters
        ----------
        check
            Called with each event (and, if ``now``, at once with `None`).
            Returns `None` to keep waiting, anything else to finish; an
            exception fails the waiter.
        now
            Whether to call ``check(None)`` at once, to test the current state.

        Returns
        -------
        future
            Resolved with the check's result; failed with
            `~camera_core.exceptions.CameraConnectionError` if the server is
            lost. Pass it to `wait`, or to `release` when done with it.
        """
        if not self.alive:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(self._lost_error(self.error or "not connected"))
            return future
        return self._waiters.add(check, now)

    def release(self, *futures: asyncio.Future) -> None:
        """Unregisters waiters and cancels those still pending."""
        self._waiters.release(*futures)

    async def wait(self, future: asyncio.Future, timeout: float | None, what: str):
        """Waits for a waiter, then releases it.

        Raises
        ------
        CameraError
            If ``timeout`` seconds pass first (`None` waits for ever).
        CameraConnectionError
            If the server is lost meanwhile.
        """
        try:
            return await self._waiters.wait(future, timeout)
        except TimeoutError:
            raise CameraError(
                f"{what}: no answer from the INDI server {self.address} "
                f"within {timeout:g} s."
            ) from None

    def _lost_error(self, reason: str) -> CameraConnectionError:
        return CameraConnectionError(f"INDI server {self.address} lost: {reason}")

    # Requests.

    def _require(self, device: str, name: str) -> tuple[_Client, Any]:
        self.ensure_alive()
        client = self._client
        assert client is not None
        vector = self.vector(device, name)
        if vector is None:
            raise CameraError(f"INDI device {device!r} has no property {name}.")
        return client, vector

    async def send(self, device: str, name: str, members: dict[str, Any]) -> None:
        """Sends new values (numbers, or ``"On"``/``"Off"`` switches).

        Raises
        ------
        CameraConnectionError
            If the server is not alive.
        CameraError
            If the property is not defined.
        """
        client, _ = self._require(device, name)
        await client.send_newVector(device, name, members=dict(members))

    async def enable_blob(self, device: str, name: str, mode: str = "Also") -> None:
        """Asks the server to send (``"Also"``) or not (``"Never"``) a BLOB."""
        client, _ = self._require(device, name)
        await client.send_enableBLOB(mode, device, name)

    async def request(
        self,
        device: str,
        name: str,
        members: dict[str, Any],
        timeout: float | None = None,
    ) -> None:
        """Sends new values and waits until the device confirms them.

        Confirmed means an update of the property, not Busy, with the values
        sent (see `~camera_core.backends.indi_waiters.confirm`).

        Raises
        ------
        CameraError
            If the device answers Alert or does not confirm within ``timeout``.
        """
        self._require(device, name)
        check = confirm(lambda: self.vector(device, name), device, name, members)
        future = self.waiter(check, now=False)
        try:
            await self.send(device, name, members)
        except BaseException:
            self.release(future)
            raise
        wanted = ", ".join(f"{k}={v}" for k, v in members.items())
        await self.wait(
            future,
            self.timeout if timeout is None else timeout,
            f"{device} did not confirm {name} ({wanted})",
        )
