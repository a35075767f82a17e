"""The faults a simulated camera can inject, and a thread-safe set of them.

`FaultSet` only stores and validates faults; what each fault does is up to
`~camera_core.simulator.SimulatedCamera`. It is thread-safe because the write
fault hook runs in the writer's worker threads.
"""

from __future__ import annotations

import errno
import threading
import types
from collections.abc import Mapping
from typing import Any

__all__ = ["FAULTS", "FaultSet"]

#: Fault names and their parameters with defaults.
FAULTS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType({
    # Connecting raises CameraConnectionError (``count`` attempts, or forever).
    "connect_failure": types.MappingProxyType({"count": None}),
    # The readout never completes, so the base class's timeout must end it.
    "readout_timeout": types.MappingProxyType({"count": None}),
    # The camera vanishes after ``after`` (fraction) of the next integration.
    "unplug": types.MappingProxyType({"after": 0.5}),
    # The cooler stalls ``offset`` °C from the set point, towards ambient.
    "cooler_never_settles": types.MappingProxyType({"offset": 3.0}),
    # Writes raise OSError(``errno``) (``count`` attempts, or forever); the
    # spool fails too if ``include_spool``.
    "write_failure": types.MappingProxyType(
        {"errno": "EROFS", "count": None, "include_spool": False}
    ),
})  # fmt: skip


def _check_name(name: str) -> None:
    if name not in FAULTS:
        raise ValueError(f"Unknown fault {name!r}; valid faults are {sorted(FAULTS)}.")


def validate_fault(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Returns the parameters of a fault with defaults filled in.

    Raises
    ------
    ValueError
        If the fault or one of its parameters is unknown or invalid.
    """
    _check_name(name)
    unknown = sorted(set(params) - set(FAULTS[name]))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {unknown} for fault {name!r}; valid are "
            f"{sorted(FAULTS[name])}."
        )
    values = {**FAULTS[name], **params}
    if values.get("count") is not None and int(values["count"]) < 1:
        raise ValueError("A fault count must be at least 1 (or None for forever).")
    if name == "write_failure" and not isinstance(
        getattr(errno, str(values["errno"]), None), int
    ):
        raise ValueError(f"Unknown errno name {values['errno']!r}.")
    if name == "unplug" and not 0 <= float(values["after"]) <= 1:
        raise ValueError("unplug 'after' is a fraction of exptime in [0, 1].")
    return values


class FaultSet:
    """The active faults of a camera and their parameters."""

    def __init__(self) -> None:
        self._faults: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def view(self) -> Mapping[str, Mapping[str, Any]]:
        """A read-only copy of the active faults."""
        with self._lock:
            return types.MappingProxyType(
                {k: types.MappingProxyType(dict(v)) for k, v in self._faults.items()}
            )

    def get(self, name: str) -> dict[str, Any] | None:
        """A copy of the parameters of fault ``name``, or `None` if inactive."""
        with self._lock:
            fault = self._faults.get(name)
            return None if fault is None else dict(fault)

    def add(self, name: str, **params: Any) -> dict[str, Any]:
        """Validates and activates a fault (replacing it), returning its values."""
        values = validate_fault(name, params)
        with self._lock:
            self._faults[name] = values
        return dict(values)

    def remove(self, name: str | None = None) -> list[str]:
        """Deactivates one fault or all; returns the names that were cleared."""
        if name is not None:
            _check_name(name)
        names = list(FAULTS) if name is None else [name]
        with self._lock:
            for fault in names:
                self._faults.pop(fault, None)
        return names

    def consume(self, name: str, spool: bool = False) -> dict[str, Any] | None:
        """Returns fault ``name`` if it fires now, using up one of its counts.

        Parameters
        ----------
        name
            The fault.
        spool
            The attempt is a spool write: ``write_failure`` only fires if it
            has ``include_spool``.
        """
        with self._lock:
            fault = self._faults.get(name)
            if fault is None or (spool and not fault.get("include_spool")):
                return None
            if fault.get("count") is not None:
                fault["count"] = int(fault["count"]) - 1
                if fault["count"] <= 0:
                    del self._faults[name]
            return dict(fault)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._faults
