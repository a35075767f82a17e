"""Waiting for INDI states and values, since INDI has no request ids.

A *waiter* is a future plus a check. The check is called with every event the
server sends (and optionally at once with `None`, to test the current state);
it returns `None` to keep waiting, anything else to finish, or raises to fail.
Callers register the waiter *before* sending a request, so that no answer can
be missed, and wait for the state or value they asked for, never for "the next
update".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..exceptions import CameraError

__all__ = ["Check", "Waiters", "confirm", "event_is"]

#: A waiter check (see the module docstring).
Check = Callable[[Any], Any]


class Waiters:
    """A registry of pending waiters, fed with every received event."""

    def __init__(self) -> None:
        self._checks: dict[asyncio.Future, Check] = {}

    def __len__(self) -> int:
        return len(self._checks)

    @staticmethod
    def _run(future: asyncio.Future, check: Check, event: Any) -> None:
        if future.done():
            return
        try:
            result = check(event)
        except Exception as err:
            future.set_exception(err)
            return
        if result is not None:
            future.set_result(result)

    def add(self, check: Check, now: bool = True) -> asyncio.Future:
        """Registers ``check``; if ``now``, calls ``check(None)`` at once."""
        future = asyncio.get_running_loop().create_future()
        self._checks[future] = check
        if now:
            self._run(future, check, None)
        return future

    def feed(self, event: Any) -> None:
        """Calls every pending check with ``event``."""
        for future, check in list(self._checks.items()):
            self._run(future, check, event)

    def release(self, *futures: asyncio.Future) -> None:
        """Unregisters waiters and cancels those still pending."""
        for future in futures:
            self._checks.pop(future, None)
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning

    def fail(self, error: BaseException) -> None:
        """Fails and unregisters every pending waiter."""
        checks, self._checks = self._checks, {}
        for future in checks:
            if not future.done():
                future.set_exception(error)

    async def wait(self, future: asyncio.Future, timeout: float | None) -> Any:
        """Waits for a waiter (`TimeoutError` after ``timeout``), then releases it."""
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        finally:
            self.release(future)


def event_is(event: Any, device: str, name: str) -> bool:
    """Whether an event defines or updates property ``name`` of ``device``."""
    return (
        event is not None
        and getattr(event, "devicename", None) == device
        and getattr(event, "vectorname", None) == name
        and getattr(event, "eventtype", None) in ("Set", "Define", "SetBLOB")
    )


def confirm(
    vector: Callable[[], Any], device: str, name: str, members: dict[str, Any]
) -> Check:
    """A check that passes when ``device.name`` holds ``members``, not Busy.

    Parameters
    ----------
    vector
        Returns the property vector as last received (or `None`).
    device, name
        The property.
    members
        Member values: strings (switches) must match exactly, numbers within
        1e-6 relative.

    Raises
    ------
    CameraError
        From the check, when the device answers Alert.
    """

    def check(event: Any) -> bool | None:
        if not event_is(event, device, name):
            return None
        state = getattr(event, "state", None) or "Ok"
        if state == "Alert":
            message = getattr(event, "message", "") or "the device answered Alert"
            raise CameraError(f"{device} refused {name}: {message}")
        current = vector()
        if state == "Busy" or current is None:
            return None
        found = current.members()
        for member, value in members.items():
            if member not in found:
                return None
            if isinstance(value, str):
                if found[member].membervalue != value:
                    return None
            else:
                have = found[member].getfloatvalue()
                if abs(have - float(value)) > 1e-6 * max(1.0, abs(float(value))):
                    return None
        return True

    return check
