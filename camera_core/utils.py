"""Utilities: logging mix-in, pollers and asynchronous helpers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import inspect
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "LoggerMixIn",
    "Poller",
    "gzip_async",
    "run_in_executor",
    "subprocess_run_async",
]

T = TypeVar("T")


class LoggerMixIn:
    """A mixin to provide easy logging with a header.

    The class using it sets ``logger`` (a `logging.Logger`) and optionally
    ``log_header``, a string prefixed to every message.
    """

    logger: logging.Logger
    log_header: str | None = None

    def log(self, message: str, level: int = logging.DEBUG, use_header: bool = True):
        """Logs a message with a header."""
        header = (self.log_header or "") if use_header else ""
        self.logger.log(level, header + message)


class Poller:
    """A task that runs a callback periodically.

    Parameters
    ----------
    name
        The name of the poller.
    callback
        A function or coroutine function to call periodically.
    delay
        Seconds between calls.
    """

    def __init__(
        self,
        name: str,
        callback: Callable[[], Any],
        delay: float = 1.0,
    ) -> None:
        self.name = name
        self.callback = callback
        self.delay = delay
        self._task: asyncio.Task | None = None
        self.last_error: BaseException | None = None

    async def poller(self) -> None:
        """The polling loop. Errors in the callback are logged, never fatal."""
        while True:
            try:
                result = self.callback()
                if inspect.isawaitable(result):
                    await result
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.last_error = err
                logging.getLogger(__name__).warning(
                    "Poller %s: callback failed: %s", self.name, err
                )
            await asyncio.sleep(self.delay)

    def start(self, delay: float | None = None) -> Poller:
        """Starts the poller, optionally with a new delay."""
        if delay is not None:
            self.delay = delay
        if self.running:
            return self
        self._task = asyncio.get_running_loop().create_task(self.poller())
        return self

    async def stop(self) -> None:
        """Cancels the poller and waits for it to finish."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def set_delay(self, delay: float, immediate: bool = False) -> None:
        """Changes the delay; with ``immediate`` the poller restarts at once."""
        self.delay = delay
        if immediate and self.running:
            await self.stop()
            self.start()

    @property
    def running(self) -> bool:
        """Whether the poller is running."""
        return self._task is not None and not self._task.done()


async def run_in_executor(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a blocking callable in the loop's default executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))


def _gzip_file(file: Path, complevel: int) -> Path:
    target = file.with_name(file.name + ".gz")
    with (
        open(file, "rb") as src,
        gzip.open(target, "wb", compresslevel=complevel) as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)
    os.unlink(file)
    return target


async def gzip_async(file: Path | str, complevel: int = 1) -> Path:
    """Compresses a file with gzip in an executor, replacing it with ``file.gz``.

    Parameters
    ----------
    file
        The file to compress.
    complevel
        The gzip compression level (1 is fastest).

    Returns
    -------
    path
        The path of the compressed file.
    """
    return await run_in_executor(_gzip_file, Path(file), complevel)


async def subprocess_run_async(*args: str, shell: bool = False) -> str:
    """Runs a command asynchronously and returns its standard output.

    With ``shell=True`` the single argument is run through the shell.

    Raises
    ------
    subprocess.CalledProcessError
        If the command exits with a non-zero status.
    """
    import subprocess

    if shell:
        proc = await asyncio.create_subprocess_shell(
            args[0], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    else:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(
            proc.returncode or 1, list(args), stdout, stderr
        )
    return stdout.decode()


def maybe_await(value: Any | Awaitable[Any]) -> Awaitable[Any]:
    """Wraps a value or awaitable so that it can always be awaited."""

    async def _wrap() -> Any:
        if inspect.isawaitable(value):
            return await value
        return value

    return _wrap()
