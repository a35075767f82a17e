"""Collects benchmarks/results/*.json into the README's Performance table.

Each result file has a row ``{"id": "summary", "<target id>": value, ...}``
with the median ratio of every target it measured. Run
``python benchmarks/summary.py --write README.md`` after ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from common import RESULTS

#: Target id -> (what is measured, comparison, target value).
TARGETS = {
    "P1": ("4096² uint16 write (checksums, fsync) ÷ tofile+fsync floor", ">=", 0.8),
    "P2": ("4096² RICE_1 write ÷ astropy CompImageHDU.writeto", ">=", 1.5),
    "P3": ("worst event-loop stall, expose+write+stack 4096² (ms)", "<=", 10.0),
    "P4": ("actor `expose 0` 2048² ÷ camera_core directly", ">=", 0.8),
    "P5": ("sequential `status` round trip ÷ bare aio-pika round trip", "<=", 1.5),
    "P6": ("50 concurrent `status` throughput ÷ bare aio-pika", ">=", 0.8),
    "P7": ("8 cameras 2048² RICE aggregate ÷ one camera (2 cores)", ">=", 1.6),
    "P8": ("peak RSS growth of one 4096² exposure ÷ frame bytes", "<=", 1.5),
}


def collect(results: Path = RESULTS) -> tuple[dict[str, float], dict[str, str]]:
    """The summary value of every target, and the machine it came from."""
    values: dict[str, float] = {}
    machine: dict[str, str] = {}
    for path in sorted(results.glob("*.json")):
        payload = json.loads(path.read_text())
        machine = payload.get("machine", machine)
        for row in payload.get("rows", []):
            if row.get("id") == "summary":
                values.update({k: v for k, v in row.items() if k in TARGETS})
    return values, machine


def render(values: dict[str, float], machine: dict[str, str]) -> str:
    """The Markdown table of targets, measured medians and verdicts."""
    lines = [
        f"Measured on {machine.get('platform', '?')}, {machine.get('cpus', '?')} "
        f"cores, Python {machine.get('python', '?')}; medians of ≥ 3 runs, each "
        "ratio against a floor measured in the same run.",
        "",
        "| id | measure | target | measured | met |",
        "|---|---|---|---|---|",
    ]
    for key, (what, op, target) in TARGETS.items():
        value = values.get(key)
        if value is None:
            lines.append(f"| {key} | {what} | {op} {target:g} | not run | |")
            continue
        met = value >= target if op == ">=" else value <= target
        lines.append(
            f"| {key} | {what} | {op} {target:g} | {value:.2f} | "
            f"{'yes' if met else '**no**'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path, nargs="?")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    table = render(*collect())
    if args.readme is None or not args.write:
        print(table)
        return 0
    text = args.readme.read_text()
    pattern = re.compile(
        r"(<!-- BEGIN PERFORMANCE -->\n)(?:.*?\n)?(<!-- END "
        r"PERFORMANCE -->)",
        re.DOTALL,
    )
    if not pattern.search(text):
        print("README has no PERFORMANCE section", file=sys.stderr)
        return 1
    args.readme.write_text(
        pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
