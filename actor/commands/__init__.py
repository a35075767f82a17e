"""Actor commands, one module per command.

`build_parser` assembles a new command group for each actor: the common
commands plus those whose capability (mix-in) the camera class has.
"""

from __future__ import annotations

import click
from clu.parsers.click import (
    get_command_model,
    get_schema,
    keyword,
    ping,
    version,
)

from camera_core import CoolerMixIn, GainMixIn, ImageAreaMixIn, ShutterMixIn

from .abort import abort
from .area import area
from .binning import binning
from .capabilities import capabilities
from .expose import expose
from .finish import finish
from .gain import gain
from .group import CameraCommandGroup
from .help import help_
from .history import history
from .list_cameras import list_cameras
from .reconnect import reconnect
from .recover import recover
from .set_default import set_default
from .shutter import shutter
from .status import status
from .stop import stop
from .temperature import temperature

__all__ = ["CAPABILITY_COMMANDS", "COMMON_COMMANDS", "build_parser"]

#: Commands every camera actor has.
COMMON_COMMANDS = (
    expose,
    abort,
    stop,
    finish,
    status,
    list_cameras,
    set_default,
    reconnect,
    recover,
    history,
    capabilities,
    get_schema,
    help_,
    ping,
    version,
    keyword,
    get_command_model,
)

#: Commands that exist only when the camera class has the mix-in.
CAPABILITY_COMMANDS = (
    (CoolerMixIn, (temperature,)),
    (ShutterMixIn, (shutter,)),
    (ImageAreaMixIn, (binning, area)),
    (GainMixIn, (gain,)),
)


def build_parser(camera_class: type | None) -> CameraCommandGroup:
    """Builds a new command group for an actor whose cameras are ``camera_class``."""

    @click.group(cls=CameraCommandGroup)
    def camera_commands(*args) -> None:
        """Commands of a camactor camera actor."""

    for command in COMMON_COMMANDS:
        camera_commands.add_command(command)
    for mixin, commands in CAPABILITY_COMMANDS:
        if camera_class is not None and issubclass(camera_class, mixin):
            for command in commands:
                camera_commands.add_command(command)
    return camera_commands
