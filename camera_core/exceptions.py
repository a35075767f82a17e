"""Exceptions and warnings raised by camera_core."""

from __future__ import annotations

__all__ = [
    "CameraBusyError",
    "CameraConnectionError",
    "CameraError",
    "CameraWarning",
    "CardError",
    "CardWarning",
    "ExposureAborted",
    "ExposureError",
    "ExposureTimeout",
    "ExposureWarning",
    "ExposureWriteError",
    "FITSModelError",
    "FITSModelWarning",
    "TemplateError",
]


class CameraError(Exception):
    """A custom core exception."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


class CameraConnectionError(CameraError):
    """An error to be raised if the camera fails to connect/disconnect."""


class CameraBusyError(CameraError):
    """The camera is already exposing and cannot take another exposure."""


class ExposureError(CameraError):
    """An error raised while exposing, reading, processing or writing a frame."""


class ExposureAborted(ExposureError):
    """The exposure was aborted and its data discarded."""


class ExposureTimeout(ExposureError):
    """The exposure did not finish within exptime plus the readout margin."""


class ExposureWriteError(ExposureError):
    """A frame could not be written to its target nor to the spool.

    The frame is still held in memory by the `~camera_core.exposure.Exposure`
    that raised this error, so it can be written again.
    """


class CameraWarning(UserWarning):
    """Base warning."""

    def __init__(self, message: str, *args, **kwargs) -> None:
        super().__init__(message, *args)


class ExposureWarning(UserWarning):
    """Warning for exposures."""


class FITSModelError(Exception):
    """An error related to the FITS model."""


class FITSModelWarning(UserWarning):
    """A warnings related to the FITS model."""


class CardError(FITSModelError):
    """Error raised by a FITS `~camera_core.models.card.Card`."""


class CardWarning(FITSModelWarning):
    """Warning raised by a FITS `~camera_core.models.card.Card`."""


class TemplateError(CardError, ValueError):
    """A template or expression is invalid or uses something not allowed.

    Raised when a card, header model or image namer is built, so that an invalid
    template is found at configuration time rather than while exposing.
    """
