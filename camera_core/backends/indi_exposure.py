"""Telling one INDI exposure's events from the leftovers of an earlier one.

INDI has no request ids: after a CCD_EXPOSURE request, the device may still send
the end and the image of an earlier exposure (one that was aborted, or started
by another client), before or even just after it reports ours Busy. So:

- the exposure has *started* when CCD_EXPOSURE goes Busy counting down from
  about the requested time (drivers echo it; some round it);
- from then on, every Busy value sets when the exposure can end at the
  earliest, by the device's own countdown;
- an end or an image is this exposure's only once it has started and its end
  is near (``slack`` seconds early at most); before that it is a leftover, and
  is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exceptions import ExposureError
from .indi_device import as_float
from .indi_waiters import event_is

__all__ = ["ExposureTracker"]


class ExposureTracker:
    """Waiter checks for the start, end, image and failure of one exposure.

    Parameters
    ----------
    device
        The INDI device name.
    value
        The exposure time requested, in seconds.
    clock
        Monotonic seconds (the event loop's ``time``).
    warn
        Called with a message when an end or an image is ignored.

    Attributes
    ----------
    end_at : float or None
        The earliest time the exposure can end, once it has started.
    """

    def __init__(
        self,
        device: str,
        value: float,
        clock: Callable[[], float],
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.device = device
        self.value = float(value)
        self.clock = clock
        self.warn = warn
        self.end_at: float | None = None
        #: Range of the first Busy value of this exposure.
        self.first = (
            self.value - max(0.05, 0.1 * self.value),
            self.value + max(1.0, 0.1 * self.value),
        )
        #: Seconds an end or an image may come before the countdown's end.
        self.slack = 0.5 + 0.01 * self.value

    def _exposure(self, event: Any) -> tuple[str, float | None] | None:
        if not event_is(event, self.device, "CCD_EXPOSURE") or event.eventtype != "Set":
            return None
        return event.state, as_float(event.get("CCD_EXPOSURE_VALUE"))

    def _due(self, what: str) -> bool:
        """Whether this exposure may have ended by now (else ``what`` is stale)."""
        if self.end_at is None:
            if self.warn is not None:
                self.warn(
                    f"{self.device}: ignoring {what} that came before the exposure "
                    "started (a leftover of an earlier exposure?)."
                )
            return False
        early = self.end_at - self.clock()
        if early <= self.slack:
            return True
        if self.warn is not None:
            self.warn(
                f"{self.device}: ignoring {what} that came {early:.1f} s before "
                "the exposure can end (a leftover of an earlier exposure?)."
            )
        return False

    def start(self, event: Any) -> float | None:
        """Check: the remaining time when the exposure started."""
        found = self._exposure(event)
        if found is None or found[0] != "Busy":
            return None
        remaining = self.value if found[1] is None else found[1]
        if not self.first[0] <= remaining <= self.first[1]:
            return None
        self.end_at = self.clock() + remaining
        return remaining

    def ended(self, event: Any) -> bool | None:
        """Check: `True` when the device ends this exposure (Ok, or 0 left)."""
        found = self._exposure(event)
        if found is None or self.end_at is None:
            return None
        state, remaining = found
        if state == "Busy" and remaining is not None:
            self.end_at = min(self.end_at, self.clock() + remaining)
        done = state == "Ok" or (remaining is not None and remaining <= 0)
        return True if done and self._due("an end") else None

    def image(self, event: Any) -> tuple[bytes, str] | None:
        """Check: this exposure's CCD1 BLOB, as ``(data, format)``."""
        if not event_is(event, self.device, "CCD1") or event.eventtype != "SetBLOB":
            return None
        if not self._due("an image"):
            return None
        member, data = next(iter(event.items()))
        return data, event.sizeformat[member][1]

    def failed(self, event: Any) -> None:
        """Check: raises `ExposureError` if the device fails the exposure."""
        found = self._exposure(event)
        if found is None:
            return
        if found[0] == "Alert":
            message = getattr(event, "message", "") or "Alert"
            raise ExposureError(f"{self.device} failed the exposure: {message}")
        if found[0] == "Idle" and self.end_at is not None:
            raise ExposureError(f"{self.device} ended the exposure without an image.")
