"""camera_core: a basecam-compatible library for wrapping astronomical cameras."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camactor")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .camera import BaseCamera, CameraSystem
from .capabilities import CameraLimits
from .events import CameraEvent, CameraSystemEvent, ExposurePhase
from .exceptions import (
    CameraBusyError,
    CameraConnectionError,
    CameraError,
    CameraWarning,
    CardError,
    CardWarning,
    ExposureAborted,
    ExposureError,
    ExposureTimeout,
    ExposureWarning,
    ExposureWriteError,
    FITSModelError,
    FITSModelWarning,
    TemplateError,
)
from .exposure import Exposure, ImageNamer
from .mixins import (
    CoolerMixIn,
    ExposureTypeMixIn,
    GainMixIn,
    ImageAreaMixIn,
    ShutterMixIn,
)
from .models import (
    Card,
    CardGroup,
    Extension,
    FITSModel,
    HeaderModel,
    MacroCard,
    WCSCards,
    basic_fits_model,
    basic_fz_fits_model,
    basic_header_model,
)
from .notifier import EventListener, EventNotifier
from .writer import recover

__all__ = [
    "BaseCamera",
    "CameraBusyError",
    "CameraConnectionError",
    "CameraError",
    "CameraEvent",
    "CameraLimits",
    "CameraSystem",
    "CameraSystemEvent",
    "CameraWarning",
    "Card",
    "CardError",
    "CardGroup",
    "CardWarning",
    "CoolerMixIn",
    "EventListener",
    "EventNotifier",
    "Exposure",
    "ExposureAborted",
    "ExposureError",
    "ExposurePhase",
    "ExposureTimeout",
    "ExposureTypeMixIn",
    "ExposureWarning",
    "ExposureWriteError",
    "Extension",
    "FITSModel",
    "FITSModelError",
    "FITSModelWarning",
    "GainMixIn",
    "HeaderModel",
    "ImageAreaMixIn",
    "ImageNamer",
    "MacroCard",
    "ShutterMixIn",
    "TemplateError",
    "WCSCards",
    "__version__",
    "basic_fits_model",
    "basic_fz_fits_model",
    "basic_header_model",
    "recover",
]
