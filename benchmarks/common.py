"""Shared helpers for the benchmark scripts: timing, medians, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """A short description of the machine the numbers come from."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
    }


def emit(record: dict[str, Any]) -> None:
    """Prints one JSON line (the scripts' machine-readable output)."""
    print(json.dumps(record), flush=True)


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    return float(statistics.median(values))


def timed(func: Callable[[], Any]) -> float:
    """Seconds taken by ``func()``."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def save(name: str, rows: list[dict[str, Any]], params: dict[str, Any]) -> Path:
    """Writes ``results/<name>.json`` with the rows, parameters and machine."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "params": params,
        "machine": machine(),
        "argv": sys.argv[1:],
        "rows": rows,
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def fast_simulator(size: int, time_factor: float = 0.01) -> dict[str, Any]:
    """A simulator section for benchmarks: no readout wait, reused noise."""
    return {
        "width": size,
        "height": size,
        "fast_noise": True,
        "readout_time": 0.0,
        "flush_time": 0.0,
        "time_factor": time_factor,
    }
