"""``expose``: take exposures on one or more cameras."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, Exposure, ExposureWriteError
from camera_core.utils import run_in_executor

from ..idempotency import (
    EXPOSURE_ID_HELP,
    check_exposure_id,
    journaled_frame,
    run_once,
)
from ..params import FiniteFloatRange
from ..paths import contained_path
from ..quicklook import report_quicklook
from ..tools import (
    fail_if_busy,
    fail_per_camera,
    get_cameras,
    is_number,
    split_values,
    to_json,
)
from .recover import report_unsaved


@click.command(cls=CluCommand)
@click.argument("ARGS", nargs=-1, type=str, metavar="[CAMERAS]... EXPTIME")
@click.option(
    "--object",
    "image_type",
    flag_value="object",
    default=True,
    help="Light frame (default).",
)
@click.option("--flat", "image_type", flag_value="flat", help="Flat frame.")
@click.option("--dark", "image_type", flag_value="dark", help="Dark frame.")
@click.option("--bias", "image_type", flag_value="bias", help="Bias frame (0 s).")
@click.option(
    "-f",
    "--filename",
    type=str,
    default=None,
    help="File name (one camera, one frame), in the camera's data dir.",
)
@click.option(
    "-n",
    "--num",
    type=click.IntRange(min=0),
    default=None,
    help="Sequence number of the (first) image.",
)
@click.option(
    "-s",
    "--stack",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Frames combined into each image.",
)
@click.option(
    "-c",
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Images to take in sequence.",
)
@click.option("--no-postprocess", is_flag=True, help="Skip post-processing.")
@click.option(
    "--timeout",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    help="Seconds each frame may run past EXPTIME.",
)
@click.option(
    "--exposure-id",
    "exposure_id",
    type=str,
    default=None,
    metavar="ID",
    help=EXPOSURE_ID_HELP,
)
async def expose(
    command: Command,
    args: tuple[str, ...],
    image_type: str,
    filename: str | None,
    num: int | None,
    stack: int,
    count: int,
    no_postprocess: bool,
    timeout: float | None,
    exposure_id: str | None,
):
    """Exposes cameras concurrently and writes the images."""
    try:
        names, values = split_values(args, float, 1)
    except ValueError as err:
        return command.fail(error=str(err))
    exptime = values[0] if values else None
    if exptime is None and image_type != "bias":
        if any(is_number(name) for name in names):
            return command.fail(
                error="EXPTIME goes after the camera names, e.g. 'expose sim1 1.5'."
            )
        return command.fail(error="EXPTIME is required (seconds), e.g. 'expose 1.5'.")
    if exptime is not None and exptime < 0:
        return command.fail(error=f"EXPTIME must be ≥ 0 seconds, not {exptime:g}.")
    args = (names, exptime, image_type, filename, num, stack, count)
    options = (no_postprocess, timeout)
    if exposure_id is None:
        return await _expose(command, *args, *options)
    error = check_exposure_id(exposure_id)
    if error is not None:
        return command.fail(error=error)
    request = {
        "cameras": list(names),
        "exptime": exptime,
        "image_type": image_type,
        "stack": stack,
        "count": count,
        "filename": filename,
        "num": num,
        "postprocess": not no_postprocess,
        "timeout": timeout,
    }
    await run_once(
        command,
        exposure_id,
        request,
        lambda: _expose(command, *args, *options, exposure_id, request),
    )


async def _expose(
    command: Command,
    names: list[str],
    exptime: float | None,
    image_type: str,
    filename: str | None,
    num: int | None,
    stack: int,
    count: int,
    no_postprocess: bool,
    timeout: float | None,
    request_id: str | None = None,
    request: dict | None = None,
):
    """Takes the exposures of a checked ``expose`` and ends the command."""
    cameras = get_cameras(command, names)
    if cameras is None:
        return
    if filename is not None and (len(cameras) > 1 or count > 1):
        return command.fail(error="--filename needs a single camera and --count 1.")
    if fail_if_busy(command, cameras):
        return

    actor = command.actor
    sequences = {
        camera.name: actor.new_sequence(camera.name, count) for camera in cameras
    }
    try:
        errors = await _run_sequence(
            command,
            cameras,
            sequences,
            float(exptime or 0.0),
            image_type,
            filename,
            num,
            stack,
            not no_postprocess,
            timeout,
            request_id,
            request,
        )
    finally:
        for camera in cameras:
            actor.sequences.pop(camera.name, None)
    if errors:
        return fail_per_camera(command, errors)
    done = {name: seq.current for name, seq in sequences.items()}
    if any(seq.current < count for seq in sequences.values()):
        return command.finish(text=f"Sequence ended early: {done} of {count} images.")
    return command.finish()


async def _run_sequence(
    command: Command,
    cameras: list[BaseCamera],
    sequences: dict,
    exptime: float,
    image_type: str,
    filename: str | None,
    num: int | None,
    stack: int,
    postprocess: bool,
    timeout: float | None,
    request_id: str | None = None,
    request: dict | None = None,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    single = len(cameras) == 1 and all(s.total == 1 for s in sequences.values())

    async def one(camera: BaseCamera) -> None:
        sequence = sequences[camera.name]
        writes: set[asyncio.Task] = set()
        try:
            for index in range(sequence.total):
                if sequence.finish_requested:
                    return
                await _wait_for_disk(command, camera, writes)
                sequence.current = index + 1
                parameters = {
                    "exptime": exptime,
                    "image_type": image_type,
                    "stack": stack,
                    "count_n": index + 1,
                    "count_total": sequence.total,
                    "filename": filename,
                    "num": None if num is None else num + index,
                    "postprocess": postprocess,
                    "request": request,
                }
                async with journaled_frame(
                    command, camera, index, single, parameters, request_id
                ) as exposure_id:
                    exposure = await camera.expose(
                        exptime,
                        image_type=image_type,
                        stack=stack,
                        filename=await _target(command, camera, filename),
                        num=None if num is None else num + index,
                        write=False,
                        postprocess=postprocess,
                        timeout_margin=timeout,
                        exposure_id=exposure_id,
                    )
                if filename is not None:  # checked again when the file is made
                    exposure.roots = _roots(command, camera)
                exposure.snapshot()  # the header describes the camera now
                task = asyncio.create_task(_write(command, exposure))
                writes.add(task)
                command.actor.pending_writes.add(task, exposure)  # stop waits
        finally:
            # Frames already read are always written, even if the sequence
            # failed or the command was cancelled.
            outcomes = await asyncio.shield(
                asyncio.gather(*writes, return_exceptions=True)
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome

    async def guarded(camera: BaseCamera) -> None:
        try:
            await one(camera)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            errors[camera.name] = str(err) or type(err).__name__

    await asyncio.gather(*(guarded(camera) for camera in cameras))
    return errors


async def _target(
    command: Command, camera: BaseCamera, filename: str | None
) -> str | None:
    """Where ``--filename`` writes: relative to the camera's image directory.

    The path, with ``..`` and symbolic links resolved, must stay inside the
    actor's ``data_dir`` or the camera's image directory; otherwise
    `UnsafePathError` says which directories are allowed.
    """
    if filename is None:
        return None
    base = camera.image_namer.get_dirname(camera)
    roots = _roots(command, camera)
    return str(await run_in_executor(contained_path, filename, base, roots))


def _roots(command: Command, camera: BaseCamera) -> tuple[Path, ...]:
    """The directories a ``--filename`` may write into."""
    base = Path(camera.image_namer.get_dirname(camera))
    data_dir = getattr(command.actor, "data_dir", None)
    return (base,) if data_dir is None else (Path(data_dir), base)


async def _write(command: Command, exposure: Exposure) -> None:
    """Writes a frame and reports its ``filename`` keyword."""
    try:
        await exposure.write()
    except ExposureWriteError as err:  # kept in memory: tell everyone, loudly
        command.actor.journal.unsaved(exposure, err)
        raise report_unsaved(command, exposure, err) from err
    result = exposure.write_result
    reply = command.warning if result.spooled else command.info
    reply(
        filename=to_json(
            {
                "camera": exposure.camera.name,
                "exposure_id": exposure.exposure_id,
                "filename": result.target,
                "path": result.path,
                "datasum": result.datasum,
                "checksum": result.checksum,
                "spooled": result.spooled,
            }
        )
    )
    await report_quicklook(command, exposure)  # never raises; off the loop


async def _wait_for_disk(
    command: Command, camera: BaseCamera, writes: set[asyncio.Task]
) -> None:
    """Backpressure: waits while the camera has a full queue of frames to write.

    At most ``actor.write_queue`` frames of a camera are written while it takes
    the next one, so memory stays bounded when the disk is slower than the
    camera. A write that failed ends the sequence with its error.
    """
    limit = command.actor.write_queue
    while True:
        for task in [task for task in writes if task.done()]:
            writes.discard(task)
            task.result()  # raises the write's error
        if len(writes) < limit:
            return
        command.warning(
            text=f"{camera.name}: waiting for the disk ({len(writes)} images "
            "still being written)."
        )
        await asyncio.wait(writes, return_when=asyncio.FIRST_COMPLETED)
