"""P8: peak RSS growth of one 4096² exposure, and growth over many.

Peak RSS is sampled every millisecond from /proc/self/statm by a thread while
the camera exposes and writes. The floor is the frame itself (its bytes).
Targets: peak growth ÷ frame bytes ≤ 1.5, and no growth of the settled RSS
over N exposures (reported as MB per 100 exposures).

Usage: python benchmarks/bench_memory.py [--size 4096] [--exposures 1000]
       [--runs 3] [--rice]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import emit, fast_simulator, median, save

from camera_core import basic_fz_fits_model
from camera_core.simulator import SimulatedCameraSystem

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakSampler:
    """Samples the RSS in a thread and keeps the maximum."""

    def __enter__(self) -> PeakSampler:
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--exposures", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rice", action="store_true", help="RICE_1 files.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        config = {
            "simulator": fast_simulator(args.size, time_factor=0.001),
            "cameras": {
                "sim1": {
                    "uid": "MEM-1",
                    "spool_dir": f"{tmp}/spool",
                    "image_namer": {"basename": "{num:05d}.fits", "dirname": tmp},
                }
            },
        }
        system = SimulatedCameraSystem(camera_config=config)
        camera = await system.add_camera(name="sim1")
        model = basic_fz_fits_model if args.rice else None
        frame_bytes = args.size * args.size * 2

        async def one() -> None:
            exposure = await camera.expose(0.0, write=True, fits_model=model)
            Path(exposure.write_result.path).unlink()

        await one()  # warm-up: caches, imports, thread pool
        for run in range(args.runs):
            gc.collect()
            base = rss()
            with PeakSampler() as sampler:
                await one()
            growth = sampler.peak - base
            rows.append(
                {
                    "id": "P8",
                    "run": run,
                    "peak_growth_mb": growth / 1e6,
                    "frame_mb": frame_bytes / 1e6,
                    "ratio": growth / frame_bytes,
                }
            )
            emit(rows[-1])
        gc.collect()
        start = rss()
        samples = []
        for index in range(args.exposures):
            await one()
            if index % 100 == 99:
                gc.collect()
                samples.append(rss())
        drift = (samples[-1] - samples[0]) / max(len(samples) - 1, 1) if samples else 0
        rows.append(
            {
                "id": "P8-drift",
                "exposures": args.exposures,
                "start_mb": start / 1e6,
                "end_mb": rss() / 1e6,
                "mb_per_100": drift / 1e6,
            }
        )
        emit(rows[-1])
        await system.disconnect()
    summary = {
        "P8": median([r["ratio"] for r in rows if r["id"] == "P8"]),
        "P8_drift_mb_per_100": rows[-1]["mb_per_100"],
    }
    emit({"summary": summary})
    save("memory", [*rows, {"id": "summary", **summary}], vars(args))


if __name__ == "__main__":
    asyncio.run(main())
