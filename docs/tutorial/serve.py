"""Serves the VendorLib cameras as a CLU actor (the tutorial's last step).

Run it next to ``driver.py`` and ``vendorlib.py``::

    python serve.py vendor.yml
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from driver import VendorCamera, VendorCameraSystem

from actor.actor import CameraActor


def make_actor(config: Any, name: str = "vendorcam", **broker: Any) -> CameraActor:
    """A camera actor for the VendorLib cameras of ``config`` (a path or dict)."""
    system = VendorCameraSystem(VendorCamera, camera_config=config)
    broker.setdefault("host", "127.0.0.1")
    return CameraActor(system, name=name, **broker)


async def main(config: Any, name: str = "vendorcam", **broker: Any) -> None:
    """Runs the actor until the task is cancelled (Ctrl-C)."""
    actor = make_actor(config, name, **broker)
    await actor.start()
    try:
        await actor.run_forever()
    finally:
        await actor.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "vendor.yml"))
