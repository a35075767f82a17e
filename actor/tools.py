"""Helpers shared by the actor commands."""

from __future__ import annotations

import asyncio
import enum
import math
import pathlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.time import Time

from camera_core import BaseCamera

if TYPE_CHECKING:
    from clu import Command

__all__ = [
    "fail_per_camera",
    "get_cameras",
    "require",
    "run_per_camera",
    "split_values",
    "to_json",
]


def to_json(value: Any) -> Any:
    """Casts a value to plain JSON types.

    numpy scalars and arrays, tuples, paths, enums and times become Python
    numbers, lists and strings; non-finite floats become `None`. CLU silently
    drops replies that ``json.dumps`` cannot serialise, so every keyword value
    goes through this.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [to_json(item) for item in value]
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, Time):
        return value.isot
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return str(value)


def get_cameras(
    command: Command,
    cameras: Iterable[str] | None = None,
    check_cameras: bool = True,
    fail_command: bool = True,
) -> list[BaseCamera] | None:
    """Determines which cameras a command acts on.

    Named cameras (by name or UID) are used if given; otherwise the actor's
    default cameras, if any are set (an absent default fails the command
    rather than acting on other cameras); otherwise every connected camera.

    Parameters
    ----------
    command
        The command being run.
    cameras
        Camera names or UIDs from the command line.
    check_cameras
        Fail if any selected camera is not connected.
    fail_command
        Fail the command (with a clear error) when no usable camera is found.

    Returns
    -------
    cameras
        The cameras, or `None` if the command was failed.
    """
    actor = command.actor
    system = actor.camera_system
    names = list(cameras or [])
    selected: list[BaseCamera] = []
    options = [name for name in names if name.startswith("-")]
    if options:
        return _fail(
            command,
            fail_command,
            f"No such option: {options[0]}. Send 'help <command>' for its usage.",
        )
    if names:
        for name in names:
            camera = system.get_camera(name=name) or system.get_camera(uid=name)
            if not camera:
                known = ", ".join(c.name for c in system.cameras) or "none"
                return _fail(
                    command,
                    fail_command,
                    f"Unknown camera {name!r}; known cameras: {known}.",
                )
            if camera not in selected:
                selected.append(camera)
    elif actor.default_cameras:
        # Never fall back to other cameras when defaults are set but absent.
        missing = []
        for name in actor.default_cameras:
            camera = system.get_camera(name=name) or system.get_camera(uid=name)
            if camera:
                selected.append(camera)
            else:
                missing.append(name)
        if missing and (check_cameras or not selected):
            return _fail(
                command,
                fail_command,
                f"default camera {', '.join(missing)} is not connected; name "
                "the cameras or use 'set-default'.",
            )
    else:
        selected = [camera for camera in system.cameras if camera.connected]
    if not selected:
        return _fail(command, fail_command, "No cameras connected.")
    if check_cameras:
        for camera in selected:
            if not camera.connected:
                return _fail(
                    command,
                    fail_command,
                    f"camera {camera.name} is not connected; try "
                    f"'reconnect {camera.name}'.",
                )
    return selected


def _fail(command: Command, fail_command: bool, error: str) -> None:
    if fail_command and not command.status.is_done:
        command.fail(error=error)
    return None


def fail_per_camera(command: Command, errors: dict[str, str]) -> None:
    """Fails a command, reporting each camera's error as its own keyword."""
    for camera, error in errors.items():
        command.error(error={"camera": camera, "error": error})
    summary = "; ".join(f"{camera}: {error}" for camera, error in errors.items())
    command.fail(error=summary)


def require(
    command: Command, cameras: list[BaseCamera], mixin: type, what: str
) -> bool:
    """Fails the command unless every camera has ``mixin`` (via the MRO)."""
    missing = [camera.name for camera in cameras if not isinstance(camera, mixin)]
    if missing:
        command.fail(error=f"camera {', '.join(missing)} has no {what}.")
        return False
    return True


async def run_per_camera(
    cameras: list[BaseCamera],
    func: Callable[[BaseCamera], Awaitable[Any]],
    timeout: float | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Runs ``func`` on each camera concurrently.

    Returns
    -------
    results, errors
        The result of each camera that succeeded and the error message of each
        that failed (a timeout counts as a failure), keyed by camera name.
    """

    async def one(camera: BaseCamera) -> Any:
        if timeout is None:
            return await func(camera)
        return await asyncio.wait_for(func(camera), timeout)

    outcomes = await asyncio.gather(
        *(one(camera) for camera in cameras), return_exceptions=True
    )
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for camera, outcome in zip(cameras, outcomes, strict=True):
        if isinstance(outcome, asyncio.TimeoutError):
            errors[camera.name] = f"timed out after {timeout:g} s"
        elif isinstance(outcome, BaseException):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            errors[camera.name] = str(outcome) or type(outcome).__name__
        else:
            results[camera.name] = outcome
    return results, errors


def split_values(
    args: Iterable[str], kind: type, most: int
) -> tuple[list[str], list[Any]]:
    """Splits ``CAMERAS... VALUES`` into camera names and up to ``most`` values.

    Trailing tokens that parse as ``kind`` (int or float) are values; the rest
    are camera names. Raises `ValueError` if a camera name follows a value, or
    for an unknown option (CLU passes those through as arguments).
    """
    tokens = list(args)
    for token in tokens:
        if token.startswith("-") and not is_number(token):
            raise ValueError(
                f"No such option: {token}. Send 'help <command>' for its usage."
            )
    values: list[Any] = []
    while tokens and len(values) < most:
        try:
            value = kind(tokens[-1])
        except ValueError:
            if kind is int and is_number(tokens[-1]):
                raise ValueError(f"{tokens[-1]!r} is not an integer.") from None
            break
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{tokens[-1]!r} is not a finite number.")
        values.insert(0, value)
        tokens.pop()
    return tokens, values


def is_number(token: str) -> bool:
    """Whether a command-line token parses as a number."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def fail_if_busy(command: Command, cameras: list[BaseCamera]) -> bool:
    """Fails the command if any camera is exposing; returns whether it did."""
    busy = [camera.name for camera in cameras if camera.exposing]
    if busy:
        command.fail(error=f"camera {', '.join(busy)} is busy")
        return True
    return False


async def finish_per_camera(
    command: Command,
    cameras: list[BaseCamera],
    func: Callable[[BaseCamera], Awaitable[Any]],
    timeout: float | None = None,
) -> None:
    """Runs ``func`` on each camera, then finishes the command or fails it.

    The command fails (with one ``error`` keyword per failed camera) if any
    camera failed, and finishes otherwise.
    """
    _, errors = await run_per_camera(cameras, func, timeout=timeout)
    if errors:
        fail_per_camera(command, errors)
    else:
        command.finish()


async def interrupt(
    command: Command,
    names: Iterable[str],
    action: Callable[[BaseCamera], Awaitable[Any]],
    verb: str,
    past: str,
    check_cameras: bool = True,
) -> None:
    """Ends the exposures in progress with ``action`` (abort or stop).

    Any ``expose --count`` sequence on those cameras ends too. Fails if no
    selected camera is exposing.
    """
    selected = get_cameras(command, names, check_cameras=check_cameras)
    if selected is None:
        return
    exposing = [camera for camera in selected if camera.exposing]
    if not exposing:
        command.fail(error=f"No exposure in progress to {verb}.")
        return
    for camera in exposing:
        sequence = command.actor.sequences.get(camera.name)
        if sequence is not None:
            sequence.finish_requested = True
    _, errors = await run_per_camera(exposing, action)
    if errors:
        fail_per_camera(command, errors)
    else:
        done = ", ".join(camera.name for camera in exposing)
        command.finish(text=f"{past.capitalize()} {done}.")
