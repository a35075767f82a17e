"""P1 and P2: writing an exposure, against floors measured in the same run.

P1  Uncompressed ``--size``² uint16 exposure written by ``Exposure.write``
    (header model, DATASUM/CHECKSUM, temporary file, fsync, link), frames/s ÷
    the floor: ``ndarray.tofile`` + ``os.fsync`` of the same array into the same
    directory (target ≥ 0.8).
P2  The same exposure with the RICE_1 model, frames/s ÷ astropy's own
    ``HDUList([PrimaryHDU(), CompImageHDU(data, compression_type='RICE_1')])
    .writeto(checksum=True)`` (no fsync) into the same directory (target ≥ 1.5).

The frame is a simulated sky (noise, stars) from the simulator, so it
compresses like a real one. Each run writes ``--frames`` frames per variant,
interleaved frame by frame so that disk and machine noise hit every variant
alike; a variant's rate is frames / total seconds. The ratios are medians over
``--runs`` runs. The ``astropy_path`` rows write the same exposure through the
writer with the fast serialiser turned off (astropy's ``writeto``), to show
what the fast path changes. Every file written is verified once per run.

Usage: python benchmarks/bench_write.py [--size 4096] [--frames 8] [--runs 5]
       [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from common import emit, fast_simulator, median, save

from camera_core import Exposure, basic_fits_model, basic_fz_fits_model, fitsio_fast
from camera_core.simulator import SimulatedCamera, SimulatedCameraSystem

TARGETS = {"P1": 0.8, "P2": 1.5}


def make_config(out: Path, size: int) -> dict[str, Any]:
    return {
        "simulator": fast_simulator(size),
        "cameras": {
            "sim1": {
                "uid": "BENCH-WRITE",
                "spool_dir": str(out / "spool"),
                "image_namer": {
                    "basename": "{camera.name}-{num:04d}.fits",
                    "dirname": str(out),
                },
            }
        },
    }


def verify(path: Path, data: np.ndarray) -> None:
    """Fails unless astropy verifies the checksums and reads the same pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, checksum=True) as hdul:
            hdu = hdul[1] if len(hdul) > 1 else hdul[0]
            if not np.array_equal(hdu.data, data):
                raise AssertionError(f"{path}: pixels differ")


class Variant:
    """One way of writing a frame, timed per frame."""

    def __init__(
        self,
        name: str,
        write: Callable[[Path], Awaitable[None] | None],
        suffix: str = ".fits",
    ) -> None:
        self.name = name
        self.write = write
        self.suffix = suffix
        self.seconds: list[float] = []

    async def once(self, out: Path, index: int, keep: bool = False) -> Path:
        path = out / f"{self.name}-{index:04d}-{time.monotonic_ns()}{self.suffix}"
        start = time.perf_counter()
        result = self.write(path)
        if result is not None:
            await result
        self.seconds.append(time.perf_counter() - start)
        if not keep:
            await asyncio.to_thread(path.unlink)  # not timed
        return path

    def rate(self) -> float:
        return len(self.seconds) / sum(self.seconds)


async def main(args: argparse.Namespace) -> None:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-write-"))
    out.mkdir(parents=True, exist_ok=True)
    system = SimulatedCameraSystem(
        SimulatedCamera, camera_config=make_config(out, args.size)
    )
    camera = await system.add_camera(name="sim1")
    frame = (await camera.expose(1.0)).data
    assert frame.dtype == np.uint16 and frame.shape == (args.size, args.size)

    def floor(path: Path) -> None:
        with open(path, "wb") as raw:
            frame.tofile(raw)
            raw.flush()
            os.fsync(raw.fileno())

    def exposure(model: Any) -> Exposure:
        exp = Exposure(camera, data=frame, fits_model=model)
        exp.image_type, exp.exptime, exp.exptime_n = "object", 1.0, 1.0
        return exp

    async def ours(path: Path, model: Any, fast: bool = True) -> None:
        fitsio_fast.ENABLED = fast
        try:
            await exposure(model).write(path)
        finally:
            fitsio_fast.ENABLED = True

    def astropy_rice(path: Path) -> None:
        hdul = fits.HDUList(
            [fits.PrimaryHDU(), fits.CompImageHDU(frame, compression_type="RICE_1")]
        )
        hdul.writeto(path, checksum=True)

    groups = {
        "P1": [
            Variant("floor", lambda p: asyncio.to_thread(floor, p), ".raw"),
            Variant("ours", lambda p: ours(p, basic_fits_model)),
            Variant("astropy_path", lambda p: ours(p, basic_fits_model, False)),
        ],
        "P2": [
            Variant("astropy_rice", lambda p: asyncio.to_thread(astropy_rice, p)),
            Variant("ours_rice", lambda p: ours(p, basic_fz_fits_model)),
        ],
    }
    rows: list[dict[str, Any]] = []
    try:
        for target, variants in groups.items():
            for variant in variants:  # warm-up, and check the output once
                path = await variant.once(out, 0, keep=True)
                if path.suffix == ".fits":
                    verify(path, frame)
                path.unlink()
            for run in range(args.runs):
                for variant in variants:
                    variant.seconds = []
                for index in range(args.frames):
                    for variant in variants:
                        await variant.once(out, index)
                row: dict[str, Any] = {"target": target, "run": run}
                for variant in variants:
                    row[f"{variant.name}_fps"] = variant.rate()
                    row[f"{variant.name}_ms"] = 1e3 * median(variant.seconds)
                base = variants[0].name
                other = variants[1].name
                row["ratio"] = row[f"{other}_fps"] / row[f"{base}_fps"]
                emit(row)
                rows.append(row)
    finally:
        await system.disconnect()
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)

    summary: dict[str, Any] = {"id": "summary"}
    for target, variants in groups.items():
        mine = [r for r in rows if r["target"] == target]
        for variant in variants:
            for unit in ("fps", "ms"):
                key = f"{variant.name}_{unit}"
                summary[f"{target}_{key}_median"] = median([r[key] for r in mine])
        summary[f"{target}_ratio_median"] = median([r["ratio"] for r in mine])
        summary[f"{target}_target"] = TARGETS[target]
        summary[f"{target}_met"] = summary[f"{target}_ratio_median"] >= TARGETS[target]
        summary[target] = summary[f"{target}_ratio_median"]  # for summary.py
    emit(summary)
    path = save("write", [*rows, summary], vars(args))
    print(f"wrote {path}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="frame side, pixels")
    parser.add_argument("--frames", type=int, default=8, help="frames per variant")
    parser.add_argument("--runs", type=int, default=5, help="runs (median)")
    parser.add_argument("--out", default=None, help="directory on the disk to test")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
