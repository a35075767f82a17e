"""When to ping an INDI server, and when its silence means it is lost.

indiserver does not answer pings itself: it forwards a ``getProperties`` to the
driver of the device named, and that driver answers. A driver can be busy for
seconds (a blocking USB readout, say), so:

- pings go to the devices in use (the cameras connected), so that a busy device
  nobody here uses never matters; with none in use, to every device (any answer
  will do);
- any device's data counts as an answer;
- an unanswered ping may wait ``timeout`` (4 s), or ``transfer_timeout`` while
  any device exposes or sends a large BLOB; with a ping every ``interval``
  (0.5 s), a silent server is lost within 4.5 s plus one check.

A killed server or a closed socket is seen at once, by end of stream, by
`~camera_core.backends.indi_client.INDIConnection`; this is for a server that
keeps its socket open but no longer answers.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

__all__ = ["Liveness"]


class Liveness:
    """Ping bookkeeping of one connection (pure: callers pass the time).

    Attributes
    ----------
    last_rx : float
        When the last device event arrived.
    """

    #: Seconds between pings while the server answers.
    interval: float = 0.5
    #: Seconds an unanswered ping may wait before the server counts as lost.
    timeout: float = 4.0
    #: The same while any device exposes or sends a large BLOB (see `transfer`).
    transfer_timeout: float = 60.0

    def __init__(self) -> None:
        self.last_rx = 0.0
        self._ping: float | None = None  # when the oldest unanswered ping left
        self._transfers = 0
        self._in_use: Counter[str] = Counter()

    def restart(self) -> None:
        """Forgets the pings of a previous client."""
        self._ping = None

    def received(self, now: float) -> None:
        """Records data from a device (an answer to any ping before it)."""
        self.last_rx = now

    @property
    def waiting(self) -> bool:
        """Whether a ping is unanswered."""
        return self._ping is not None and self.last_rx < self._ping

    def due(self, now: float) -> bool:
        """Whether to ping now (never while a ping is unanswered)."""
        if self.waiting:
            return False
        return self._ping is None or now - self._ping >= self.interval

    def sent(self, now: float) -> None:
        """Records a ping."""
        self._ping = now

    def overdue(self, now: float) -> str | None:
        """Why the server counts as lost, or `None` while it does not."""
        if not self.waiting:
            return None
        assert self._ping is not None
        limit = self.transfer_timeout if self._transfers else self.timeout
        waited = now - self._ping
        return f"no answer to a ping within {waited:.1f} s" if waited > limit else None

    @contextlib.contextmanager
    def transfer(self) -> Iterator[None]:
        """Allows ``transfer_timeout`` while a device exposes or sends a BLOB."""
        self._transfers += 1
        try:
            yield
        finally:
            self._transfers -= 1

    def use(self, device: str) -> None:
        """Marks a device in use (once per user); pings go to such devices."""
        self._in_use[device] += 1

    def unuse(self, device: str) -> None:
        """Undoes one `use`."""
        self._in_use[device] -= 1
        if self._in_use[device] <= 0:
            del self._in_use[device]

    def targets(self, defined: list[str]) -> list[str]:
        """The devices to ping: those in use (and defined), else all defined."""
        return [name for name in defined if name in self._in_use] or defined
