"""Blocking ASCOM Alpaca helpers for `camera_core.backends.alpaca`.

Everything here is synchronous (``requests``) and is meant to run in an
executor, never on the event loop: device discovery, the ImageBytes download,
the ASCOM error mapping and an alpyca `~alpaca.camera.Camera` whose HTTP
timeout can be configured.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
import requests
from alpaca import exceptions as ascom
from alpaca.camera import Camera
from alpaca.device import Device

from camera_core.exceptions import CameraConnectionError, CameraError

__all__ = [
    "ASCOM_ERRORS",
    "AlpacaCameraDevice",
    "AlpacaDevice",
    "AlpacaServerUnreachable",
    "ascom_error",
    "discover_cameras",
    "fetch_image",
    "optional",
    "parse_device_time",
    "parse_imagebytes",
]

T = TypeVar("T")

#: Names of the reserved ASCOM error numbers, for error messages.
ASCOM_ERRORS: dict[int, str] = {
    0x400: "NotImplemented",
    0x401: "InvalidValue",
    0x402: "ValueNotSet",
    0x407: "NotConnected",
    0x408: "Parked",
    0x409: "Slaved",
    0x40B: "InvalidOperation",
    0x40C: "ActionNotImplemented",
    0x40E: "OperationCancelled",
}

#: What each reserved error means for a camera user.
_MEANINGS: dict[int, str] = {
    0x400: "the camera does not implement it",
    0x401: "the camera refused the value",
    0x402: "the camera has no value for it yet",
    0x407: "the device is not connected to its driver",
    0x40B: "the camera cannot do it in its current state",
    0x40C: "the driver does not implement that action",
    0x40E: "the operation was cancelled",
}

#: numpy dtypes of the ImageBytes transmission element types (little-endian).
ELEMENT_DTYPES: dict[int, str] = {
    1: "<i2",  # Int16
    2: "<i4",  # Int32
    3: "<f8",  # Double
    4: "<f4",  # Single
    5: "<u8",  # UInt64
    6: "u1",  # Byte
    7: "<i8",  # Int64
    8: "<u2",  # UInt16
    9: "<u4",  # UInt32
}

#: Size of the ImageBytes metadata header (metadata version 1).
IMAGEBYTES_HEADER = 44

#: Device numbers probed when a server has no management API and no list is set.
MAX_PROBED_DEVICES = 16

#: Errors meaning a property is absent rather than the device failing.
_ABSENT = (
    ascom.NotImplementedException,
    ascom.InvalidOperationException,
    ascom.ValueNotSetException,
)


class AlpacaServerUnreachable(CameraConnectionError):
    """The Alpaca server does not answer (refused, reset or timed out)."""


@dataclasses.dataclass(frozen=True)
class AlpacaDevice:
    """A camera served by an Alpaca server.

    Attributes
    ----------
    number
        The device number on the server.
    name
        The device name reported by the server.
    uid
        The camera UID: the server's ``UniqueID``, or ``host:port/camera/N``
        when the server has no management API.
    """

    number: int
    name: str
    uid: str


class AlpacaCameraDevice(Camera):
    """An alpyca camera whose HTTP requests use ``timeout`` seconds.

    alpyca fixes a 5 s timeout for every property; a configurable one lets a
    dead server be noticed sooner (or a slow one tolerated).

    Parameters
    ----------
    address
        ``host:port`` of the Alpaca server.
    device_number
        The camera's device number.
    timeout
        Seconds each request may take.
    """

    def __init__(self, address: str, device_number: int, timeout: float) -> None:
        super().__init__(address, device_number)
        self.timeout = float(timeout)

    def _get(self, attribute: str, tmo: float | None = None, **data: Any) -> Any:
        return super()._get(attribute, tmo=self.timeout if tmo is None else tmo, **data)

    def _put(self, attribute: str, tmo: float | None = None, **data: Any) -> Any:
        return super()._put(attribute, tmo=self.timeout if tmo is None else tmo, **data)


def address(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{int(port)}"


def transport_reason(err: BaseException) -> str:
    """A short reason for a transport error (``[Errno 111] Connection refused``)."""
    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, ascom.AlpacaRequestException):
        return f"HTTP {err.number}"
    text = str(err)
    match = re.search(r"\[Errno -?\d+\][^\"')]*", text)
    if match:
        return match.group(0).strip()
    return type(err).__name__


def is_transport_error(err: BaseException) -> bool:
    """Whether ``err`` means the server did not answer (not a device error)."""
    if isinstance(err, (requests.ConnectionError, requests.Timeout)):
        return True
    # alpyca reports HTTP 5xx (a crashed server or proxy) as AlpacaRequestException.
    return isinstance(err, ascom.AlpacaRequestException) and err.number >= 500


def ascom_error(err: BaseException, what: str, camera: str) -> CameraError:
    """Translates an alpyca or transport error into a clear `CameraError`.

    Parameters
    ----------
    err
        The exception raised by alpyca or ``requests``.
    what
        What was being done, e.g. ``"setting BinX to 2"``.
    camera
        The camera name, for the message.

    Returns
    -------
    error
        A `CameraConnectionError` when the server or device is unreachable or
        not connected (the caller marks the connection lost), else a
        `CameraError` naming the ASCOM error.
    """
    if isinstance(err, CameraError):
        return err
    if is_transport_error(err):
        return CameraConnectionError(
            f"Camera {camera}: {what} failed: the Alpaca server does not answer "
            f"({transport_reason(err)})."
        )
    if isinstance(err, ascom.AlpacaRequestException):
        return CameraError(
            f"Camera {camera}: {what} was refused by the Alpaca server "
            f"(HTTP {err.number}): {err.message}"
        )
    number = getattr(err, "number", None)
    message = getattr(err, "message", None) or str(err)
    if isinstance(number, int):
        name = ASCOM_ERRORS.get(number, "DriverError")
        meaning = _MEANINGS.get(number, "the driver reported an error")
        text = (
            f"Camera {camera}: {what} failed: {meaning} "
            f"(ASCOM error 0x{number:X} {name}: {message})"
        )
        if number == 0x407:
            return CameraConnectionError(text)
        return CameraError(text)
    return CameraError(f"Camera {camera}: {what} failed: {type(err).__name__}: {err}")


def optional(read: Callable[[], T]) -> T | None:
    """Reads a property, returning `None` if the device does not implement it."""
    try:
        return read()
    except _ABSENT:
        return None


def parse_imagebytes(content: bytes) -> np.ndarray:
    """Decodes an Alpaca ImageBytes response into a ``(ny, nx)`` array.

    Alpaca images are x-major (``[x][y]``); the returned array is transposed
    for FITS (rows are y) and C-contiguous.

    Raises
    ------
    CameraError
        If the response carries an error or is malformed.
    """
    if len(content) < IMAGEBYTES_HEADER:
        raise CameraError(f"ImageBytes response too short ({len(content)} bytes).")
    header = np.frombuffer(content, dtype="<i4", count=11)
    error = int(header[1])
    start = int(header[4])
    if error != 0:
        message = content[IMAGEBYTES_HEADER:].decode("utf-8", errors="replace")
        name = ASCOM_ERRORS.get(error, "DriverError")
        raise CameraError(
            f"image download failed (ASCOM error 0x{error:X} {name}: {message})"
        )
    transmission, rank = int(header[6]), int(header[7])
    dims = [int(d) for d in header[8:11]]
    dtype = ELEMENT_DTYPES.get(transmission)
    if dtype is None:
        raise CameraError(f"Unsupported ImageBytes element type {transmission}.")
    if rank != 2:
        raise CameraError(
            f"The camera sent a rank-{rank} (colour) image; only monochrome "
            "(rank 2) images are supported."
        )
    nx, ny = dims[0], dims[1]
    data = np.frombuffer(content, dtype=dtype, offset=start)
    if data.size != nx * ny:
        raise CameraError(
            f"ImageBytes size mismatch: {data.size} pixels for {nx}×{ny}."
        )
    return np.ascontiguousarray(data.reshape(nx, ny).T)


def fetch_image(
    session: requests.Session, device: Camera, timeout: tuple[float, float]
) -> np.ndarray:
    """Downloads the last image of ``device`` as a ``(ny, nx)`` numpy array.

    Asks for ``application/imagebytes``; a server that answers with JSON is
    decoded with numpy too (slower, but never through nested Python lists of
    alpyca's ``ImageArray``).

    Parameters
    ----------
    session
        The HTTP session to use (separate from alpyca's, whose requests are
        serialised by a global lock).
    device
        The alpyca camera (for its URL).
    timeout
        ``(connect, read)`` timeouts in seconds.
    """
    response = session.get(
        f"{device.base_url}/imagearray",
        params={"ClientID": Device._client_id, "ClientTransactionID": 0},
        headers={"Accept": "application/imagebytes"},
        timeout=timeout,
    )
    if not 200 <= response.status_code < 300:
        raise ascom.AlpacaRequestException(
            response.status_code, f"{response.text[:200]} (URL {response.url})"
        )
    kind = response.headers.get("content-type", "")
    if "application/imagebytes" in kind:
        return parse_imagebytes(response.content)
    payload = response.json()
    number = int(payload.get("ErrorNumber", 0) or 0)
    if number:
        raise CameraError(
            f"image download failed (ASCOM error 0x{number:X} "
            f"{ASCOM_ERRORS.get(number, 'DriverError')}: "
            f"{payload.get('ErrorMessage', '')})"
        )
    data = np.asarray(payload["Value"])
    if data.ndim != 2:
        raise CameraError(f"The camera sent a {data.ndim}-D image; 2-D expected.")
    return np.ascontiguousarray(data.T)


def parse_device_time(value: Any) -> datetime.datetime | None:
    """Parses an Alpaca time (``LastExposureStartTime``) as an aware UTC datetime.

    ASCOM specifies ``CCYY-MM-DDThh:mm:ss[.sss]`` in UTC; an explicit offset
    is honoured. Returns `None` if the value cannot be parsed.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def _get_json(
    session: requests.Session, url: str, timeout: float
) -> tuple[int, dict[str, Any] | None]:
    """GETs ``url``: the HTTP status and the JSON body (`None` if not JSON)."""
    try:
        response = session.get(
            url, params={"ClientID": Device._client_id}, timeout=timeout
        )
    except (requests.ConnectionError, requests.Timeout) as err:
        raise AlpacaServerUnreachable(
            f"The Alpaca server at {url.split('/')[2]} does not answer "
            f"({transport_reason(err)})."
        ) from err
    if response.status_code >= 500:
        raise AlpacaServerUnreachable(
            f"The Alpaca server at {url.split('/')[2]} failed (HTTP "
            f"{response.status_code})."
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body if isinstance(body, dict) else None


def discover_cameras(
    session: requests.Session,
    host: str,
    port: int,
    devices: Iterable[int] | None,
    timeout: float,
) -> list[AlpacaDevice]:
    """Lists the cameras configured on an Alpaca server (blocking).

    Uses the management API (``/management/v1/configureddevices``). Servers
    without it are probed with ``GET /api/v1/camera/N/name``: the numbers in
    ``devices``, or 0, 1, … up to the first missing one.

    Parameters
    ----------
    session
        The HTTP session.
    host, port
        The Alpaca server.
    devices
        Device numbers to use; `None` for every configured camera.
    timeout
        Seconds each request may take.

    Raises
    ------
    AlpacaServerUnreachable
        If the server does not answer.
    """
    base = f"http://{address(host, port)}"
    wanted = None if devices is None else {int(n) for n in devices}
    status, body = _get_json(
        session, f"{base}/management/v1/configureddevices", timeout
    )
    if status == 200 and body is not None and isinstance(body.get("Value"), list):
        found = []
        for entry in body["Value"]:
            if str(entry.get("DeviceType", "")).lower() != "camera":
                continue
            number = int(entry.get("DeviceNumber", -1))
            if wanted is not None and number not in wanted:
                continue
            uid = str(entry.get("UniqueID") or f"{address(host, port)}/camera/{number}")
            found.append(AlpacaDevice(number, str(entry.get("DeviceName", "")), uid))
        return sorted(found, key=lambda device: device.number)
    # No management API: probe the camera endpoints.
    numbers = sorted(wanted) if wanted is not None else range(MAX_PROBED_DEVICES)
    found = []
    for number in numbers:
        status, body = _get_json(
            session, f"{base}/api/v1/camera/{number}/name", timeout
        )
        present = status == 200 and body is not None and not body.get("ErrorNumber")
        if present:
            uid = f"{address(host, port)}/camera/{number}"
            found.append(AlpacaDevice(number, str(body.get("Value", "")), uid))
        elif wanted is None:
            break  # device numbers are consecutive from 0
    return found
