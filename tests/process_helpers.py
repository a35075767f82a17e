"""Running a program from an async test without blocking its event loop."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path


async def run_process(
    *argv: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[int, str]:
    """Runs ``argv``; returns its exit status and output (stderr included).

    The process is killed if it has not ended after ``timeout`` seconds, and
    `TimeoutError` is raised.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, output.decode()
