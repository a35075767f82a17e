"""Tries the VendorLib driver without the actor (a step of the tutorial)."""

from __future__ import annotations

import asyncio
import sys

from driver import VendorCamera, VendorCameraSystem


async def main(data_dir: str = ".") -> None:
    """Connects ``cam1``, bins it, cools it and takes a 1 s exposure."""
    config = {
        "cameras": {"cam1": {"uid": "VL-1001", "image_namer": {"dirname": data_dir}}}
    }
    system = VendorCameraSystem(VendorCamera, camera_config=config)
    print("available:", system.list_available_cameras())
    camera = await system.add_camera(name="cam1")
    print("connected:", camera.connected, camera.limits.width, camera.limits.height)
    print("binning:", await camera.set_binning(2))
    print("area:", await camera.get_image_area())
    print("set point reached:", await camera.set_temperature(-10))
    exposure = await camera.expose(1.0, write=True)
    print("wrote", exposure.filename, "shape", exposure.data.shape)
    print("mean", exposure.data.mean())
    await system.disconnect()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
