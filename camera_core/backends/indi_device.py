"""The device side of `~camera_core.backends.indi.INDICamera`.

`INDIDeviceMixIn` maps camera_core's settings onto INDI properties: binning
(CCD_BINNING), image area (CCD_FRAME: unbinned, 0-based X/Y/WIDTH/HEIGHT; ours is
1-based and inclusive), gain and offset (CCD_GAIN/CCD_OFFSET, or CCD_CONTROLS),
CCD_TEMPERATURE and CCD_FRAME_TYPE. It also fills the limits and the cached
FITS header values from the device, reports the status, and re-applies the
settings after a reconnection (they are kept by the camera system, since the
poller replaces the camera object of a lost device).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from indipyclient import getfloat

from ..exceptions import CameraConnectionError, CameraError
from .indi_waiters import event_is

if TYPE_CHECKING:
    from ..capabilities import CameraLimits
    from .indi_client import INDIConnection

__all__ = ["FRAME_TYPES", "SETTINGS", "INDIDeviceMixIn"]

#: The CCD_FRAME_TYPE switch of each image type.
FRAME_TYPES = {
    "bias": "FRAME_BIAS",
    "dark": "FRAME_DARK",
    "flat": "FRAME_FLAT",
    "object": "FRAME_LIGHT",
}
#: Where drivers put gain and offset, in order of preference.
GAIN_PROPERTIES = (("CCD_GAIN", "GAIN"), ("CCD_CONTROLS", "Gain"))
OFFSET_PROPERTIES = (("CCD_OFFSET", "OFFSET"), ("CCD_CONTROLS", "Offset"))
#: Properties a connected CCD must define.
REQUIRED = ("CCD_EXPOSURE", "CCD_INFO", "CCD_FRAME", "CCD_BINNING", "CCD1")
#: Settings re-applied after a reconnection, in this order.
SETTINGS = ("binning", "area", "gain", "offset", "frame_type", "set_point")


class INDIDeviceMixIn:
    """Settings, limits, header values and status of an INDI CCD device.

    Mixed into `~camera_core.backends.indi.INDICamera`, before the capability
    mix-ins whose ``_*_internal`` methods it implements.
    """

    device: str
    camera_params: dict[str, Any]
    limits: CameraLimits
    header_values: dict[str, Any]
    _set_point: float | None

    @property
    def connection(self) -> INDIConnection:
        """The server connection of the camera system."""
        return self.camera_system.connection  # type: ignore[attr-defined]

    @property
    def settings(self) -> dict[str, Any]:
        """Settings made through this backend, re-applied on reconnection."""
        return self.camera_system.settings(self.uid)  # type: ignore[attr-defined]

    @property
    def timeout(self) -> float:
        """Seconds the device has to confirm a request."""
        return self.connection.timeout

    # Property helpers.

    def _number(self, name: str, member: str) -> float | None:
        return self.connection.number(self.device, name, member)

    def _require(self, name: str, member: str) -> float:
        self.connection.ensure_alive()
        value = self._number(name, member)
        if value is None:
            raise CameraError(f"INDI device {self.device} has no {name}.{member}.")
        return value

    def _find(self, candidates: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
        for name, member in candidates:
            if self.connection.member(self.device, name, member) is not None:
                return name, member
        return None

    def _bounds(self, name: str, member: str) -> tuple[float | None, float | None]:
        found = self.connection.member(self.device, name, member)
        if found is None:
            return None, None
        try:
            return getfloat(found.min), getfloat(found.max)
        except (TypeError, ValueError):
            return None, None

    async def _request(self, name: str, members: dict[str, Any], **kwargs: Any):
        await self.connection.request(self.device, name, members, **kwargs)

    def _ready(self) -> bool:
        """Whether the CCD properties are defined, with the sensor size set."""
        conn, device = self.connection, self.device
        if any(conn.vector(device, name) is None for name in REQUIRED):
            return False
        sizes = (
            ("CCD_INFO", "CCD_MAX_X"),
            ("CCD_INFO", "CCD_MAX_Y"),
            ("CCD_FRAME", "WIDTH"),
        )
        return all((self._number(*where) or 0) > 0 for where in sizes)

    async def _configure(self) -> None:
        """Upload mode, transfer format, polling period, then earlier settings."""
        conn, device, settings = self.connection, self.device, self.settings
        if conn.vector(device, "UPLOAD_MODE") is not None:
            if conn.switches_on(device, "UPLOAD_MODE") != ["UPLOAD_CLIENT"]:
                await self._request("UPLOAD_MODE", {"UPLOAD_CLIENT": "On"})
        if conn.vector(device, "CCD_TRANSFER_FORMAT") is not None:
            if "FORMAT_FITS" not in conn.switches_on(device, "CCD_TRANSFER_FORMAT"):
                await self._request("CCD_TRANSFER_FORMAT", {"FORMAT_FITS": "On"})
        period = settings.get(
            "polling_period_ms", self.camera_params.get("polling_period_ms")
        )
        if period is not None:
            await self.set_polling_period(int(period))
        await conn.enable_blob(device, "CCD1")
        for key in SETTINGS:
            if key not in settings:
                continue
            value = settings[key]
            try:
                await self._apply(key, value)
            except CameraConnectionError:
                raise
            except CameraError as err:
                self.log(f"Could not restore {key}={value}: {err}", 40)

    async def _apply(self, key: str, value: Any) -> None:
        if key == "binning":
            await self._set_binning_internal(*value)
        elif key == "area":
            await self._set_image_area_internal(value)
        elif key == "gain":
            await self._set_gain_internal(value)
        elif key == "offset":
            await self._set_offset_internal(value)
        elif key == "frame_type":
            await self._set_frame_type(value)
        elif key == "set_point":
            await self._set_temperature_internal(value)
            self._set_point = float(value)

    async def set_polling_period(self, period_ms: int) -> None:
        """Sets the driver's POLLING_PERIOD (kept across reconnections)."""
        await self._request("POLLING_PERIOD", {"PERIOD_MS": int(period_ms)})
        self.settings["polling_period_ms"] = int(period_ms)

    def _update_limits(self) -> None:
        """Fills the limits the configuration leaves open from the device."""
        configured = set((self.camera_params.get("limits") or {}).keys())
        width = self._number("CCD_INFO", "CCD_MAX_X")
        height = self._number("CCD_INFO", "CCD_MAX_Y")
        px = self._number("CCD_INFO", "CCD_PIXEL_SIZE_X")
        py = self._number("CCD_INFO", "CCD_PIXEL_SIZE_Y")
        hmax = self._bounds("CCD_BINNING", "HOR_BIN")[1]
        vmax = self._bounds("CCD_BINNING", "VER_BIN")[1]
        values: dict[str, Any] = {
            "width": None if width is None else int(width),
            "height": None if height is None else int(height),
            "pixel_size": None if px is None or py is None else (px, py),
            "max_binning": None if not hmax or not vmax else (int(hmax), int(vmax)),
        }
        ranges = {
            "exptime": ("CCD_EXPOSURE", "CCD_EXPOSURE_VALUE"),
            "gain": self._find(GAIN_PROPERTIES),
            "offset": self._find(OFFSET_PROPERTIES),
            "temperature": ("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE"),
        }
        for key, where in ranges.items():
            low, high = (None, None) if where is None else self._bounds(*where)
            if low is None or high is None or high <= low:
                continue
            cast = int if key == "offset" else float
            values[f"{key}_min"], values[f"{key}_max"] = cast(low), cast(high)
        self.limits.update(
            **{k: v for k, v in values.items() if v is not None and k not in configured}
        )

    def _refresh_header_values(self) -> None:
        """Caches the device metadata written into the FITS header."""
        conn, device = self.connection, self.device
        area = self._area_now()
        gain = self._find(GAIN_PROPERTIES)
        offset = self._find(OFFSET_PROPERTIES)
        width = self._number("CCD_INFO", "CCD_MAX_X")
        height = self._number("CCD_INFO", "CCD_MAX_Y")
        temp = self._number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE")
        driver = conn.text(device, "DRIVER_INFO", "DRIVER_EXEC")
        version = conn.text(device, "DRIVER_INFO", "DRIVER_VERSION")
        px = self._number("CCD_INFO", "CCD_PIXEL_SIZE_X")
        py = self._number("CCD_INFO", "CCD_PIXEL_SIZE_Y")
        self.header_values = {
            "device": device,
            "driver": None if driver is None else f"{driver} {version or ''}".strip(),
            "server": conn.address,
            "detsize": None if not width else f"[1:{width:.0f},1:{height:.0f}]",
            "pixel_size_x": None if px is None else round(px, 4),
            "pixel_size_y": None if py is None else round(py, 4),
            "hbin": _int(self._number("CCD_BINNING", "HOR_BIN")),
            "vbin": _int(self._number("CCD_BINNING", "VER_BIN")),
            "x_origin": None if area is None else area[0] - 1,
            "y_origin": None if area is None else area[2] - 1,
            "gain": None if gain is None else self._number(*gain),
            "offset": None if offset is None else _int(self._number(*offset)),
            "ccd_temp": None if temp is None else round(temp, 2),
            "set_point": self._set_point,
        }

    async def _set_frame_type(self, frame_type: str) -> None:
        name = FRAME_TYPES.get(frame_type, frame_type)
        conn = self.connection
        if conn.vector(self.device, "CCD_FRAME_TYPE") is None:
            return
        if conn.switches_on(self.device, "CCD_FRAME_TYPE") != [name]:
            await self._request("CCD_FRAME_TYPE", {name: "On"})
        self.settings["frame_type"] = name

    def _area_now(self) -> tuple[int, int, int, int] | None:
        frame = [self._number("CCD_FRAME", m) for m in ("X", "Y", "WIDTH", "HEIGHT")]
        if any(v is None for v in frame):
            return None
        x, y, w, h = (round(v) for v in frame)  # type: ignore[arg-type]
        return (x + 1, x + w, y + 1, y + h)

    def _status_internal(self) -> dict[str, Any]:
        conn, device = self.connection, self.device
        gain, offset = self._find(GAIN_PROPERTIES), self._find(OFFSET_PROPERTIES)
        exposure = conn.vector(device, "CCD_EXPOSURE")
        hbin = _int(self._number("CCD_BINNING", "HOR_BIN"))
        vbin = _int(self._number("CCD_BINNING", "VER_BIN"))
        area = self._area_now()
        return {
            "device": device,
            "server": conn.address,
            "server_alive": conn.alive,
            "driver": self.header_values.get("driver"),
            "temperature": self._number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE"),
            "set_point": self._set_point,
            "binning": None if hbin is None else [hbin, vbin],
            "area": None if area is None else list(area),
            "gain": None if gain is None else self._number(*gain),
            "offset": None if offset is None else _int(self._number(*offset)),
            "frame_type": next(iter(conn.switches_on(device, "CCD_FRAME_TYPE")), None),
            "exposure_state": None if exposure is None else exposure.state,
            "upload_mode": next(iter(conn.switches_on(device, "UPLOAD_MODE")), None),
            "polling_period_ms": _int(self._number("POLLING_PERIOD", "PERIOD_MS")),
        }

    # Mix-in internals.

    async def _get_temperature_internal(self) -> float:
        return self._require("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE")

    async def _set_temperature_internal(self, temperature: float) -> None:
        conn, device = self.connection, self.device
        self._require("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE")

        def answered(event: Any) -> bool | None:
            if not (event_is(event, device, "CCD_TEMPERATURE") and event.state):
                return None
            if event.state == "Alert":
                raise CameraError(f"{device} refused the set point: {event.message}")
            return True

        future = conn.waiter(answered, now=False)
        try:
            await conn.send(
                device, "CCD_TEMPERATURE", {"CCD_TEMPERATURE_VALUE": temperature}
            )
            await conn.wait(future, self.timeout, f"{device} set point")
        finally:
            conn.release(future)
        target = self._set_point if self._set_point is not None else temperature
        self.settings["set_point"] = float(target)

    async def _get_cooler_power_internal(self) -> float | None:
        return self._number("CCD_COOLER_POWER", "CCD_COOLER_VALUE")

    async def _get_binning_internal(self) -> tuple[int, int]:
        hbin = self._require("CCD_BINNING", "HOR_BIN")
        return int(hbin), int(self._require("CCD_BINNING", "VER_BIN"))

    async def _set_binning_internal(self, hbin: int, vbin: int) -> None:
        await self._request("CCD_BINNING", {"HOR_BIN": int(hbin), "VER_BIN": int(vbin)})
        self.settings["binning"] = (int(hbin), int(vbin))

    async def _get_image_area_internal(self) -> tuple[int, int, int, int]:
        area = self._area_now()
        if area is None:
            raise CameraError(f"INDI device {self.device} has no CCD_FRAME.")
        return area

    async def _set_image_area_internal(
        self, area: tuple[int, int, int, int] | None = None
    ) -> None:
        if area is None:  # the full frame
            x0 = y0 = 1
            x1 = int(self._require("CCD_INFO", "CCD_MAX_X"))
            y1 = int(self._require("CCD_INFO", "CCD_MAX_Y"))
        else:
            x0, x1, y0, y1 = (int(v) for v in area)
        frame = {"X": x0 - 1, "Y": y0 - 1, "WIDTH": x1 - x0 + 1, "HEIGHT": y1 - y0 + 1}
        await self._request("CCD_FRAME", frame)
        self.settings["area"] = None if area is None else (x0, x1, y0, y1)

    async def _get_gain_internal(self) -> float:
        where = self._find(GAIN_PROPERTIES)
        if where is None:
            raise CameraError(f"INDI device {self.device} has no gain property.")
        return self._require(*where)

    async def _set_gain_internal(self, gain: float) -> None:
        where = self._find(GAIN_PROPERTIES)
        if where is None:
            raise CameraError(f"INDI device {self.device} has no gain property.")
        await self._request(where[0], {where[1]: float(gain)})
        self.settings["gain"] = float(gain)

    async def _get_offset_internal(self) -> int | None:
        where = self._find(OFFSET_PROPERTIES)
        return None if where is None else _int(self._number(*where))

    async def _set_offset_internal(self, offset: int) -> None:
        where = self._find(OFFSET_PROPERTIES)
        if where is None:
            raise CameraError(f"INDI device {self.device} has no offset property.")
        await self._request(where[0], {where[1]: int(offset)})
        self.settings["offset"] = int(offset)


def as_float(value: Any) -> float | None:
    """An INDI number (string, maybe sexagesimal) as a float, or `None`."""
    try:
        return None if value is None else float(getfloat(value))
    except (TypeError, ValueError):
        return None


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)
