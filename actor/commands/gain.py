"""``gain``: read or set gain, offset and readout mode."""

from __future__ import annotations

import contextlib

import click
from clu import Command
from clu.parsers.click import CluCommand

from camera_core import BaseCamera, GainMixIn

from ..keywords import gain_keyword
from ..params import FiniteFloatRange
from ..tools import fail_if_busy, finish_per_camera, get_cameras, require


@click.command(cls=CluCommand)
@click.argument("CAMERAS", nargs=-1, type=str)
@click.option(
    "--gain", "gain_value", type=FiniteFloatRange(), default=None, help="Gain to set."
)
@click.option("--offset", type=int, default=None, help="Offset to set.")
@click.option("--readout-mode", type=str, default=None, help="Readout mode to set.")
async def gain(
    command: Command,
    cameras: tuple[str, ...],
    gain_value: float | None,
    offset: int | None,
    readout_mode: str | None,
):
    """Reports gain, offset and readout mode, setting those given."""
    selected = get_cameras(command, cameras)
    if selected is None or not require(command, selected, GainMixIn, "gain control"):
        return
    changing = gain_value is not None or offset is not None or readout_mode is not None
    if changing and fail_if_busy(command, selected):
        return

    async def apply(camera: BaseCamera) -> None:
        if changing:
            await _set_all(camera, gain_value, offset, readout_mode)
        command.info(gain=await gain_keyword(camera))

    await finish_per_camera(command, selected, apply)


async def _set_all(
    camera: BaseCamera,
    gain_value: float | None,
    offset: int | None,
    readout_mode: str | None,
) -> None:
    """Sets the values given, all or none: a refused one restores the others."""
    before = (
        await camera.get_gain(),
        await camera.get_offset(),
        await camera.get_readout_mode(),
    )
    try:
        if readout_mode is not None:
            await camera.set_readout_mode(readout_mode)
        if gain_value is not None:
            await camera.set_gain(gain_value)
        if offset is not None:
            await camera.set_offset(offset)
    except Exception:
        old_gain, old_offset, old_mode = before
        with contextlib.suppress(Exception):  # the user sees the first error
            if old_mode is not None and readout_mode is not None:
                await camera.set_readout_mode(old_mode)
            if gain_value is not None:
                await camera.set_gain(old_gain)
            if old_offset is not None and offset is not None:
                await camera.set_offset(old_offset)
        raise
