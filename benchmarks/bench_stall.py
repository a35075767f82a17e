"""P3: the worst event-loop stall while a camera exposes, stacks and writes.

A ticker task sleeps 10 ms at a time and records how late each wake-up is. A
simulated camera meanwhile takes exposures of ``--size``² pixels, stacking
``--stack`` frames and writing each exposure, in each format: plain FITS,
RICE_1 tile compression and ``.fits.gz``. The stall of a run is the worst
lateness seen; the result per format is the median over ``--runs`` runs
(target ≤ 10 ms). The floor is the same ticker on an idle loop, in the same
run.

For the worst tick of each run, ``worst_cpu_wait_ms`` is how long the loop
thread was runnable but had no CPU (Linux schedstat): other processes, or our
own threads, holding both cores. The rest of a stall is the loop waiting for
the GIL or doing work itself. Garbage-collector pauses are reported too.

``--trace`` also samples the event-loop thread's stack while it is late and
prints where the stalls come from.

Usage: python benchmarks/bench_stall.py [--size 4096] [--stack 3]
       [--exposures 3] [--runs 3] [--formats fits,rice,gz] [--out DIR]
       [--switch-interval SECONDS] [--trace]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from common import emit, fast_simulator, median, save

from camera_core import basic_fits_model, basic_fz_fits_model
from camera_core.simulator import SimulatedCamera, SimulatedCameraSystem

TICK = 0.010
TARGET_MS = 10.0

FORMATS = {
    "fits": (basic_fits_model, ".fits"),
    "rice": (basic_fz_fits_model, ".fits"),
    "gz": (basic_fits_model, ".fits.gz"),
}


def make_config(out: Path, size: int) -> dict[str, Any]:
    return {
        "simulator": fast_simulator(size),
        "cameras": {
            "sim1": {
                "uid": "BENCH-STALL",
                "spool_dir": str(out / "spool"),
                "exposure_timeout_margin": 60.0,
                "image_namer": {
                    "basename": "{camera.name}-{num:04d}.fits",
                    "dirname": str(out),
                },
            }
        },
    }


class GCWatch:
    """Records garbage collector pauses (any thread), the longest per run."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.full = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._start)
            self.full += info.get("generation") == 2

    def reset(self) -> dict[str, Any]:
        out = {"gc_longest_ms": self.longest * 1e3, "gc_full": self.full}
        self.longest, self.full = 0.0, 0
        return out


GC = GCWatch()


class Sampler:
    """Samples the loop thread's stack while the ticker is late (``--trace``)."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.expected = 0.0  # perf_counter time of the next tick
        self.samples: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            late = time.perf_counter() - self.expected
            if self.expected and late > 0.003:
                frame = sys._current_frames().get(self.thread_id)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-6:]
                    key = " <- ".join(
                        f"{Path(f.filename).name}:{f.lineno}:{f.name}"
                        for f in reversed(stack)
                    )
                    self.samples[key] += 1


def _run_delay() -> float:
    """Seconds this thread has waited for a CPU (Linux schedstat), or 0."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def ticker(
    stalls: list[float], sampler: Sampler | None, waits: list[float] | None = None
) -> None:
    """Records how late each 10 ms tick is, and how much of it the loop
    thread spent runnable but without a CPU (the rest is mostly the GIL)."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    delay = _run_delay()
    while True:
        if sampler is not None:
            sampler.expected = time.perf_counter() + TICK
        await asyncio.sleep(TICK)
        now = loop.time()
        stalls.append(now - last - TICK)
        last = now
        if waits is not None:
            previous, delay = delay, _run_delay()
            waits.append(delay - previous)


async def measure(
    camera: SimulatedCamera | None,
    fmt: str,
    out: Path,
    stack: int,
    exposures: int,
    sampler: Sampler | None,
) -> dict[str, Any]:
    stalls: list[float] = []
    waits: list[float] = []
    GC.reset()
    task = asyncio.create_task(ticker(stalls, sampler, waits))
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    if camera is None:  # the floor: an idle loop for a comparable time
        await asyncio.sleep(1.0)
        count = 0
    else:
        model, suffix = FORMATS[fmt]
        for index in range(exposures):
            name = out / f"{fmt}-{index:03d}-{time.monotonic_ns()}{suffix}"
            await camera.expose(
                0.5, stack=stack, fits_model=model, filename=str(name), write=True
            )
            await asyncio.to_thread(name.unlink)
        count = exposures
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.03)
    task.cancel()
    worst = max(range(len(stalls)), key=stalls.__getitem__)
    return {
        "format": fmt,
        "worst_stall_ms": stalls[worst] * 1e3,
        "worst_cpu_wait_ms": waits[worst] * 1e3,
        "p99_stall_ms": sorted(stalls)[int(0.99 * (len(stalls) - 1))] * 1e3,
        "ticks": len(stalls),
        "exposures_per_s": count / elapsed if count else None,
        **GC.reset(),
    }


async def main(args: argparse.Namespace) -> None:
    gc.callbacks.append(GC)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    args.switch_interval = sys.getswitchinterval()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-stall-"))
    out.mkdir(parents=True, exist_ok=True)
    formats = [f for f in args.formats.split(",") if f]
    system = SimulatedCameraSystem(
        SimulatedCamera, camera_config=make_config(out, args.size)
    )
    camera = await system.add_camera(name="sim1")
    sampler = Sampler(threading.get_ident()) if args.trace else None
    if sampler is not None:
        sampler.start()
    rows: list[dict[str, Any]] = []
    try:
        # Warm up every path once (thread pools, imports, caches).
        for fmt in formats:
            await measure(camera, fmt, out, args.stack, 1, None)
        for run in range(args.runs):
            floor = await measure(None, "idle", out, args.stack, 0, None)
            floor["run"] = run
            emit(floor)
            rows.append(floor)
            for fmt in formats:
                row = await measure(
                    camera, fmt, out, args.stack, args.exposures, sampler
                )
                row["run"] = run
                emit(row)
                rows.append(row)
    finally:
        if sampler is not None:
            sampler.stop()
        await system.disconnect()
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)

    summary: dict[str, Any] = {"id": "summary", "target_ms": TARGET_MS}
    for fmt in ["idle", *formats]:
        mine = [r for r in rows if r["format"] == fmt]
        summary[f"{fmt}_worst_stall_ms_median"] = median(
            [r["worst_stall_ms"] for r in mine]
        )
        summary[f"{fmt}_worst_cpu_wait_ms_median"] = median(
            [r["worst_cpu_wait_ms"] for r in mine]
        )
        summary[f"{fmt}_p99_stall_ms_median"] = median(
            [r["p99_stall_ms"] for r in mine]
        )
        rates = [r["exposures_per_s"] for r in rows if r["format"] == fmt]
        if rates and rates[0] is not None:
            summary[f"{fmt}_exposures_per_s_median"] = median(rates)
    summary["P3_worst_stall_ms"] = max(
        summary[f"{fmt}_worst_stall_ms_median"] for fmt in formats
    )
    summary["P3_met"] = summary["P3_worst_stall_ms"] <= TARGET_MS
    summary["P3"] = summary["P3_worst_stall_ms"]  # for summary.py
    emit(summary)
    params = vars(args) | {"tick_ms": TICK * 1e3}
    path = save("stall", [*rows, summary], params)
    print(f"wrote {path}", file=sys.stderr)
    if sampler is not None:
        print("Where the loop thread was while late (samples):", file=sys.stderr)
        for key, count in sampler.samples.most_common(15):
            print(f"{count:6d}  {key}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="frame side, pixels")
    parser.add_argument("--stack", type=int, default=3, help="frames per exposure")
    parser.add_argument("--exposures", type=int, default=3, help="per format, run")
    parser.add_argument("--runs", type=int, default=3, help="runs (median)")
    parser.add_argument("--formats", default="fits,rice,gz", help="of fits,rice,gz")
    parser.add_argument("--out", default=None, help="directory to write into")
    parser.add_argument("--trace", action="store_true", help="sample stalls")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval in seconds (default: the interpreter's)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # stacked floats: RICE_1 -> GZIP_2 warning
    asyncio.run(main(parse_args()))
