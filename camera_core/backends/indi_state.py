"""The INDI device state as last received, read from a connection's client."""

from __future__ import annotations

from typing import Any

__all__ = ["DeviceState"]


class DeviceState:
    """Read-only access to the devices and properties of the current client.

    Mixed into `~camera_core.backends.indi_client.INDIConnection`, which provides
    ``_client`` (an ``IPyClient``, or `None` between connections) and ``alive``.
    """

    _client: Any
    alive: bool

    def devices(self) -> list[str]:
        """Names of the devices the server defines."""
        client = self._client
        if client is None or not self.alive:
            return []
        return [name for name, device in client.items() if device.enable]

    def vector(self, device: str, name: str) -> Any | None:
        """The property vector, or `None` if it is not defined."""
        client = self._client
        if client is None:
            return None
        dev = client.get(device)
        vector = None if dev is None else dev.get(name)
        return vector if vector is not None and vector.enable else None

    def member(self, device: str, name: str, member: str) -> Any | None:
        """A member object (with ``min``, ``max``...), or `None`."""
        vector = self.vector(device, name)
        if vector is None or member not in vector.members():
            return None
        return vector.member(member)

    def number(self, device: str, name: str, member: str) -> float | None:
        """A number member as a float, or `None` if undefined."""
        found = self.member(device, name, member)
        return None if found is None else float(found.getfloatvalue())

    def text(self, device: str, name: str, member: str) -> str | None:
        """A text member, or `None` if undefined."""
        found = self.member(device, name, member)
        return None if found is None else str(found.membervalue)

    def switches_on(self, device: str, name: str) -> list[str]:
        """The members of a switch vector that are On."""
        vector = self.vector(device, name)
        if vector is None:
            return []
        return [
            m for m, member in vector.members().items() if member.membervalue == "On"
        ]
