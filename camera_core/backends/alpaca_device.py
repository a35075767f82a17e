"""Device description, setting maps and FITS cards of the Alpaca backend.

The functions reading the device are blocking (alpyca) and run in an executor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, TypeVar

from alpaca.camera import Camera

from camera_core.capabilities import CameraLimits
from camera_core.exceptions import CameraError
from camera_core.models.builtin import basic_header_model
from camera_core.models.card import Card
from camera_core.models.fits import Extension, FITSModel, HeaderModel

from .alpaca_protocol import is_transport_error, optional

__all__ = [
    "CAMERA_STATES",
    "AlpacaHeader",
    "AlpacaInfo",
    "IndexedSetting",
    "alpaca_fits_model",
    "limits_of",
    "narrow_limits",
    "poll_state",
    "read_header",
    "read_info",
]

T = TypeVar("T")

#: ASCOM ``CameraState`` values.
CAMERA_STATES = ("idle", "waiting", "exposing", "reading", "download", "error")
IDLE, WAITING, EXPOSING, READING, DOWNLOAD, ERROR = range(6)


@dataclasses.dataclass(frozen=True)
class IndexedSetting:
    """A setting the device selects by index in a list of names.

    ASCOM cameras expose Gain, Offset and ReadoutMode either as an index into
    a list (``Gains``/``Offsets``/``ReadoutModes``) or, for gain and offset, as
    a number between a minimum and a maximum. This maps the user's value to the
    device's index and back.

    Attributes
    ----------
    names
        The device's list of names.
    values
        The user-facing value of each index: the names as numbers when all of
        them are (distinct) numbers, e.g. ``["1", "2", "4"]``, else the indices
        (``["Low", "High"]`` gives 0 and 1). Gain and offset follow the same
        rule, so the value a user sets is the value reported and written in
        the header.
    """

    names: tuple[str, ...]
    values: tuple[float, ...]

    @classmethod
    def from_names(cls, names: list[Any], integers: bool = False) -> IndexedSetting:
        """Builds the map from the device's list of names.

        With ``integers`` the names count as numbers only if all are integers
        (offsets are integers in `~camera_core.mixins.GainMixIn`).
        """
        texts = tuple(str(name) for name in names)
        try:
            values = tuple(float(text) for text in texts)
            if (
                not all(math.isfinite(v) for v in values)
                or len(set(values)) != len(values)
                or (integers and not all(v == int(v) for v in values))
            ):
                raise ValueError
        except ValueError:
            values = tuple(float(index) for index in range(len(texts)))
        return cls(texts, values)

    def index(self, value: float) -> int:
        """The device index of a user value."""
        try:
            return self.values.index(float(value))
        except ValueError:
            raise CameraError(
                f"{value:g} is not one of {[f'{v:g}' for v in self.values]}."
            ) from None

    def value(self, index: int, what: str) -> float:
        """The user value of a device index.

        Raises
        ------
        CameraError
            If the device reports an index outside its own list.
        """
        if not 0 <= int(index) < len(self.values):
            raise CameraError(
                f"The camera reports {what} index {index}, outside its own list "
                f"of {len(self.values)} values {list(self.names)}."
            )
        return self.values[int(index)]


@dataclasses.dataclass
class AlpacaInfo:
    """What a connected Alpaca camera says about itself (read once at connect)."""

    name: str | None = None
    description: str | None = None
    driver_info: str | None = None
    driver_version: str | None = None
    interface_version: int | None = None
    sensor_name: str | None = None
    sensor_type: int | None = None
    width: int = 0
    height: int = 0
    max_bin_x: int = 1
    max_bin_y: int = 1
    can_asymmetric_bin: bool = False
    pixel_size: tuple[float, float] | None = None
    exposure_min: float | None = None
    exposure_max: float | None = None
    can_abort: bool = False
    can_stop: bool = False
    can_set_ccd_temperature: bool = False
    can_get_cooler_power: bool = False
    has_shutter: bool = False
    electrons_per_adu: float | None = None
    full_well: float | None = None
    max_adu: int | None = None
    gains: IndexedSetting | None = None
    gain_range: tuple[int, int] | None = None
    offsets: IndexedSetting | None = None
    offset_range: tuple[int, int] | None = None
    readout_modes: tuple[str, ...] | None = None

    def to_status(self) -> dict[str, Any]:
        """The static part of the camera status (JSON values)."""
        return {
            "device_name": self.name,
            "driver_info": self.driver_info,
            "driver_version": self.driver_version,
            "interface_version": self.interface_version,
            "sensor_name": self.sensor_name,
            "has_shutter": self.has_shutter,
            "can_abort": self.can_abort,
            "can_stop": self.can_stop,
            "can_set_ccd_temperature": self.can_set_ccd_temperature,
            "can_get_cooler_power": self.can_get_cooler_power,
            "can_asymmetric_bin": self.can_asymmetric_bin,
        }


def _range(device: Camera, low: str, high: str) -> tuple[int, int] | None:
    lower = optional(lambda: getattr(device, low))
    upper = optional(lambda: getattr(device, high))
    return None if lower is None or upper is None else (int(lower), int(upper))


def read_info(device: Camera) -> AlpacaInfo:
    """Reads the description, capabilities and limits of a camera (blocking).

    Optional properties a device does not implement are left `None`; transport
    errors propagate.
    """
    info = AlpacaInfo(
        name=optional(lambda: device.Name),
        description=optional(lambda: device.Description),
        driver_info=optional(lambda: ", ".join(device.DriverInfo)),
        driver_version=optional(lambda: device.DriverVersion),
        interface_version=optional(lambda: device.InterfaceVersion),
        sensor_name=optional(lambda: device.SensorName),
        sensor_type=optional(lambda: int(device.SensorType)),
        width=int(device.CameraXSize),
        height=int(device.CameraYSize),
        max_bin_x=int(device.MaxBinX),
        max_bin_y=int(device.MaxBinY),
        can_asymmetric_bin=bool(device.CanAsymmetricBin),
        exposure_min=optional(lambda: float(device.ExposureMin)),
        exposure_max=optional(lambda: float(device.ExposureMax)),
        can_abort=bool(device.CanAbortExposure),
        can_stop=bool(device.CanStopExposure),
        can_set_ccd_temperature=bool(device.CanSetCCDTemperature),
        can_get_cooler_power=bool(device.CanGetCoolerPower),
        has_shutter=bool(device.HasShutter),
        electrons_per_adu=optional(lambda: float(device.ElectronsPerADU)),
        full_well=optional(lambda: float(device.FullWellCapacity)),
        max_adu=optional(lambda: int(device.MaxADU)),
    )
    size_x = optional(lambda: float(device.PixelSizeX))
    size_y = optional(lambda: float(device.PixelSizeY))
    if size_x is not None and size_y is not None:
        info.pixel_size = (size_x, size_y)
    gains = optional(lambda: device.Gains)
    if gains:
        info.gains = IndexedSetting.from_names(gains)
    else:
        info.gain_range = _range(device, "GainMin", "GainMax")
    offsets = optional(lambda: device.Offsets)
    if offsets:
        info.offsets = IndexedSetting.from_names(offsets, integers=True)
    else:
        info.offset_range = _range(device, "OffsetMin", "OffsetMax")
    modes = optional(lambda: device.ReadoutModes)
    if modes:
        info.readout_modes = tuple(str(mode) for mode in modes)
    return info


def limits_of(info: AlpacaInfo) -> dict[str, Any]:
    """The `~camera_core.capabilities.CameraLimits` values of a camera.

    Listed gains and offsets are the values of `IndexedSetting` (listed
    offsets give their smallest and largest value). ASCOM has no set-point
    range, so none is set.
    """
    offset_range: tuple[int, int] | None
    if info.offsets is not None:
        values = info.offsets.values
        offset_range = (int(min(values)), int(max(values)))
    else:
        offset_range = info.offset_range
    gain_range = info.gain_range
    return {
        "width": info.width,
        "height": info.height,
        "max_binning": (info.max_bin_x, info.max_bin_y),
        "exptime_min": info.exposure_min,
        "exptime_max": info.exposure_max,
        "pixel_size": info.pixel_size,
        "gains": None if info.gains is None else list(info.gains.values),
        "gain_min": None if gain_range is None else float(gain_range[0]),
        "gain_max": None if gain_range is None else float(gain_range[1]),
        "offset_min": None if offset_range is None else offset_range[0],
        "offset_max": None if offset_range is None else offset_range[1],
        "readout_modes": (
            None if info.readout_modes is None else list(info.readout_modes)
        ),
    }


#: Limits a configured value may only raise (lower bounds) or lower (upper ones).
_LOWER_BOUNDS = ("exptime_min", "gain_min", "offset_min", "temperature_min")
_UPPER_BOUNDS = (
    "width",
    "height",
    "exptime_max",
    "gain_max",
    "offset_max",
    "temperature_max",
)


def narrow_limits(device: dict[str, Any], configured: CameraLimits) -> dict[str, Any]:
    """The device's limits narrowed by those of the configuration.

    A configured limit takes precedence but can only narrow what the device
    allows: the larger lower bound, the smaller upper bound and binning, the
    device's gains and readout modes that are also configured. A configured
    ``pixel_size`` replaces the device's.
    """
    merged = dict(device)
    for field in dataclasses.fields(configured):
        name = field.name
        mine, theirs = getattr(configured, name), device.get(name)
        if mine is None:
            continue
        if theirs is None or name == "pixel_size":
            merged[name] = mine
        elif name in _LOWER_BOUNDS:
            merged[name] = max(mine, theirs)
        elif name in _UPPER_BOUNDS:
            merged[name] = min(mine, theirs)
        elif name == "max_binning":
            merged[name] = (min(mine[0], theirs[0]), min(mine[1], theirs[1]))
        else:  # gains, readout_modes
            merged[name] = [value for value in theirs if value in mine]
    return merged


def poll_state(device: Camera, with_percent: bool) -> tuple[int, Any, bool]:
    """CameraState, PercentCompleted (`None` if not wanted or not implemented)
    and ImageReady (read only when idle), blocking."""
    state = int(device.CameraState)
    percent = None
    if with_percent and state == EXPOSING:
        percent = optional(lambda: device.PercentCompleted)
    ready = bool(device.ImageReady) if state == IDLE else False
    return state, percent, ready


@dataclasses.dataclass
class AlpacaHeader:
    """Device values of the last exposure, read by the driver for the header.

    The FITS cards read these plain attributes, so writing a file never talks
    to the device.
    """

    sensor: str | None = None
    driver: str | None = None
    xpixsz: float | None = None
    ypixsz: float | None = None
    xbinning: int | None = None
    ybinning: int | None = None
    ccd_temp: float | None = None
    set_temp: float | None = None
    cooler_power: float | None = None
    gain: float | None = None
    offset: int | None = None
    egain: float | None = None
    readout_mode: str | None = None
    date_device: str | None = None


def _quiet(read: Callable[[], T]) -> T | None:
    """Reads a header value; any device error leaves it `None`.

    Transport errors propagate: the server is gone and the exposure with it.
    """
    try:
        return read()
    except Exception as err:
        if is_transport_error(err):
            raise
        return None


def read_header(
    device: Camera, info: AlpacaInfo, binning: tuple[int, int]
) -> AlpacaHeader:
    """Reads the per-exposure header values of a camera (blocking).

    A value the device lacks, fails to give or reports inconsistently leaves
    its card empty; it never fails the exposure.
    """
    header = AlpacaHeader(
        sensor=info.sensor_name,
        driver=" ".join(str(p) for p in (info.driver_info, info.driver_version) if p)
        or None,
        xbinning=binning[0],
        ybinning=binning[1],
        egain=info.electrons_per_adu,
    )
    if info.pixel_size is not None:
        header.xpixsz = info.pixel_size[0] * binning[0]
        header.ypixsz = info.pixel_size[1] * binning[1]
    header.ccd_temp = _quiet(lambda: float(device.CCDTemperature))
    if info.can_set_ccd_temperature:
        header.set_temp = _quiet(lambda: float(device.SetCCDTemperature))
    if info.can_get_cooler_power:
        header.cooler_power = _quiet(lambda: float(device.CoolerPower))
    if info.gains is not None or info.gain_range is not None:
        gain = _quiet(lambda: int(device.Gain))
        if gain is not None and info.gains is None:
            header.gain = float(gain)
        elif gain is not None and info.gains is not None:
            header.gain = _quiet(lambda: info.gains.value(gain, "gain"))
    if info.offsets is not None or info.offset_range is not None:
        offset = _quiet(lambda: int(device.Offset))
        if offset is not None and info.offsets is None:
            header.offset = offset
        elif offset is not None and info.offsets is not None:
            value = _quiet(lambda: info.offsets.value(offset, "offset"))
            header.offset = None if value is None else int(value)
    if info.readout_modes:
        mode = _quiet(lambda: int(device.ReadoutMode))
        if mode is not None and 0 <= mode < len(info.readout_modes):
            header.readout_mode = info.readout_modes[mode]
    return header


def _card(name: str, attribute: str, comment: str) -> Card:
    return Card(name, f"{{__camera__.device_header.{attribute}}}", comment)


#: Cards with the camera's own metadata, added to the basic header model.
ALPACA_CARDS = (
    _card("SENSOR", "sensor", "Sensor name reported by the camera"),
    _card("CAMDRV", "driver", "Alpaca driver info and version"),
    _card("XPIXSZ", "xpixsz", "Pixel width including binning [um]"),
    _card("YPIXSZ", "ypixsz", "Pixel height including binning [um]"),
    _card("XBINNING", "xbinning", "Binning factor in x"),
    _card("YBINNING", "ybinning", "Binning factor in y"),
    _card("CCD-TEMP", "ccd_temp", "CCD temperature at exposure start [C]"),
    _card("SET-TEMP", "set_temp", "CCD temperature set point [C]"),
    _card("COOLPOWR", "cooler_power", "Cooler power [%]"),
    _card("GAIN", "gain", "Camera gain setting (ASCOM Gain)"),
    _card("OFFSET", "offset", "Camera offset setting (ASCOM Offset)"),
    _card("EGAIN", "egain", "Electrons per ADU reported by the camera"),
    _card("READOUTM", "readout_mode", "Readout mode"),
    _card("DATE-DEV", "date_device", "Exposure start from the camera (UTC)"),
)

#: The FITS model of Alpaca cameras: the basic header plus `ALPACA_CARDS`.
#: ``DATE-OBS`` comes from the camera's ``LastExposureStartTime``.
alpaca_fits_model = FITSModel(
    [
        Extension(
            data="raw",
            header_model=HeaderModel([*basic_header_model, *ALPACA_CARDS]),
            name="PRIMARY",
        )
    ]
)
