"""P7: several simulated cameras exposing RICE frames concurrently.

Aggregate frames/s of N cameras exposing 0 s 2048² frames at once, written as
RICE_1 files, ÷ the frames/s of one camera doing the same alone (the floor,
measured in the same run). Target on 2 cores: ≥ 1.6.

Usage: python benchmarks/bench_cameras.py [--cameras 8] [--size 2048]
       [--frames 6] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from common import emit, fast_simulator, median, save

from camera_core import basic_fz_fits_model
from camera_core.simulator import SimulatedCameraSystem


def config(tmp: str, size: int, cameras: int) -> dict[str, Any]:
    return {
        "simulator": fast_simulator(size, time_factor=0.001),
        "cameras": {
            f"sim{i}": {
                "uid": f"P7-{i}",
                "spool_dir": f"{tmp}/spool",
                "image_namer": {
                    "basename": "{camera.name}-{num:05d}.fits",
                    "dirname": tmp,
                    "overwrite": True,
                },
            }
            for i in range(1, cameras + 1)
        },
    }


async def run_cameras(cameras: list[Any], frames: int) -> float:
    """Frames per second of ``cameras`` each taking ``frames`` RICE frames."""

    async def sequence(camera: Any) -> None:
        for _ in range(frames):
            exposure = await camera.expose(
                0.0, write=True, fits_model=basic_fz_fits_model
            )
            Path(exposure.write_result.path).unlink()

    start = time.perf_counter()
    await asyncio.gather(*(sequence(camera) for camera in cameras))
    return len(cameras) * frames / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        system = SimulatedCameraSystem(
            camera_config=config(tmp, args.size, args.cameras)
        )
        cameras = [
            await system.add_camera(name=f"sim{i}") for i in range(1, args.cameras + 1)
        ]
        await run_cameras(cameras[:1], 1)  # warm-up
        for run in range(args.runs):
            one = await run_cameras(cameras[:1], args.frames)
            many = await run_cameras(cameras, args.frames)
            rows.append(
                {
                    "id": "P7",
                    "run": run,
                    "one_camera_fps": one,
                    "cameras": args.cameras,
                    "aggregate_fps": many,
                    "ratio": many / one,
                }
            )
            emit(rows[-1])
        await system.disconnect()
    summary = {"P7": median([row["ratio"] for row in rows])}
    emit({"summary": summary})
    save("cameras", [*rows, {"id": "summary", **summary}], vars(args))


if __name__ == "__main__":
    asyncio.run(main())
