"""Exposures and the sequential image namer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from .events import CameraEvent
from .exceptions import ExposureError, ExposureWriteError
from .models.fits import FITSModel
from .naming import ImageNamer
from .writer import WriteResult, write_hdulist

if TYPE_CHECKING:
    from .camera import BaseCamera

__all__ = ["Exposure", "ImageNamer"]


class Exposure:
    """Exposure class. Represents an exposure data and its metadata.

    Each exposure holds its own copy of the FITS model, so evaluating or changing
    it never changes the camera's model.

    Parameters
    ----------
    camera
        The camera that took this exposure.
    filename
        The filename of the FITS image generated.
    data
        The exposure raw data, as a 2D array.
    fits_model
        The model to create the FITS image. If `None`, the camera's model is used.
    wcs
        The WCS object describing the astrometry of this exposure.

    Attributes
    ----------
    image_type : str
        The type of image, one of ``bias``, ``flat``, ``dark``, ``object``.
    exptime : float
        The exposure time, in seconds, of a single integration.
    exptime_n : float
        The total exposure time, in seconds, of all the stacked integrations.
    stack : int
        Number of exposures stacked.
    stack_function : callable or None
        The function used for stacking.
    shutter_open : bool
        Whether the shutter must be open while integrating.
    exposure_id : str
        A unique id for the exposure.
    write_result : WriteResult or None
        Where and how the frame was written, once it is.
    """

    def __init__(
        self,
        camera: BaseCamera,
        filename: str | os.PathLike | None = None,
        data: np.ndarray | None = None,
        fits_model: FITSModel | None = None,
        wcs: WCS | None = None,
    ) -> None:
        self.camera = camera
        self.filename = None if filename is None else str(filename)
        self.data = data
        model = fits_model if fits_model is not None else camera.fits_model
        self.fits_model: FITSModel = model.copy()
        self.wcs = wcs
        self.image_type: str | None = None
        self.exptime: float | None = None
        self.exptime_n: float | None = None
        self.stack: int = 1
        self.stack_function: Callable[..., np.ndarray] | None = None
        self.shutter_open: bool = True
        self.exposure_id: str = uuid.uuid4().hex[:12]
        self.write_result: WriteResult | None = None
        #: Directories the file must stay inside, checked again when it is
        #: created (`None`: anywhere). Set for file names that came from users.
        self.roots: tuple[Path, ...] | None = None
        self._obstime: Time = Time.now()
        self._extra_hdus: list[tuple[fits.BinTableHDU | fits.ImageHDU, int | None]] = []
        self._snapshot: tuple[fits.HDUList, str | None] | None = None

    @property
    def obstime(self) -> Time:
        """The time at the beginning of the observation (`~astropy.time.Time`)."""
        return self._obstime

    @obstime.setter
    def obstime(self, value: Time | str) -> None:
        self._obstime = value if isinstance(value, Time) else Time(value, scale="utc")

    def add_hdu(
        self, hdu: fits.BinTableHDU | fits.ImageHDU, index: int | None = None
    ) -> None:
        """Adds an HDU to the list of extensions.

        Parameters
        ----------
        hdu
            The HDU to append.
        index
            Where to insert it once the FITS model is evaluated; `None` appends.
        """
        self._extra_hdus.append((hdu, index))

    def to_hdu(self, context: dict[str, Any] | None = None) -> fits.HDUList:
        """Returns an `~astropy.io.fits.HDUList` with the model evaluated.

        Parameters
        ----------
        context
            Values used to evaluate the FITS model.
        """
        if self.data is None:
            raise ExposureError("The exposure has no data to write.")
        return self.fits_model.to_hdu(self, context=context)

    async def write(
        self,
        filename: str | os.PathLike | None = None,
        context: dict[str, Any] | None = None,
        overwrite: bool = False,
        checksum: bool = True,
        retry: bool = True,
    ) -> fits.HDUList:
        """Writes the image to disk without losing it.

        The header is evaluated on the event loop (a snapshot of the camera state);
        serialisation, compression, checksums and disk I/O run in an executor. The
        file is written atomically. Transient errors are retried; if the target
        stays unwritable the frame is written to the camera's spool directory and
        an ``EXPOSURE_SPOOLED`` event is emitted. Names ending in ``.gz`` are
        gzip-compressed at level 1.

        Parameters
        ----------
        filename
            The path where to write the file. If not provided, uses `filename`.
        context
            Values used to evaluate the FITS model.
        overwrite
            Whether to overwrite the file if it exists.
        checksum
            Whether to add ``DATASUM`` and ``CHECKSUM`` cards to every HDU.
        retry
            Whether to retry transient errors before spooling.

        Returns
        -------
        hdulist
            The HDU list that was written.

        Raises
        ------
        ExposureError
            If the file exists and ``overwrite`` is False.
        ExposureWriteError
            If neither the target nor the spool could be written. The frame stays
            in memory in this exposure.
        """
        if filename is not None:
            self.filename = str(filename)
        if self.filename is None:
            raise ExposureError("No filename: pass one or set Exposure.filename.")
        camera = self.camera
        if self._snapshot is not None and context is None:
            hdulist, header_error = self._snapshot
        else:
            hdulist, header_error = self._evaluate(context)
        # The write events name the frame written, which (written in the
        # background) may not be the exposure now in progress.
        camera._notify(
            CameraEvent.EXPOSURE_WRITING,
            {"exposure_id": self.exposure_id, "filename": self.filename},
        )
        try:
            result = await write_hdulist(
                hdulist,
                Path(self.filename),
                overwrite=overwrite,
                checksum=checksum,
                gzip_level=camera.gzip_level,
                retries=camera.write_retries if retry else 0,
                backoff=camera.write_backoff,
                spool_dir=camera.spool_dir,
                metadata={
                    "camera": camera.name,
                    "uid": camera.uid,
                    "exposure_id": self.exposure_id,
                    "image_type": self.image_type,
                    "exptime": self.exptime,
                    "obstime": self.obstime.isot,
                    "header_error": header_error,
                },
                fault_hook=camera.write_fault,
                roots=self.roots,
            )
        except Exception as err:  # any failure keeps the frame, never drops it
            if self not in camera._unsaved:
                camera._unsaved.append(self)
            raise ExposureWriteError(
                f"Frame {self.exposure_id} NOT WRITTEN and kept in memory: {err}. "
                "Free space or fix permissions, then call write() again."
            ) from err
        if self in camera._unsaved:
            camera._unsaved.remove(self)
        self.write_result = result
        payload = {
            "exposure_id": self.exposure_id,
            "filename": str(result.target),
            "path": str(result.path),
            "datasum": result.datasum,
            "checksum": result.checksum,
        }
        if result.spooled:
            camera.log(
                f"Could not write {result.target} ({result.error}); frame spooled "
                f"to {result.path}. Run recover() once the target is writable.",
                level=40,
            )
            camera._notify(
                CameraEvent.EXPOSURE_SPOOLED, {**payload, "error": result.error}
            )
        else:
            camera._notify(CameraEvent.EXPOSURE_WRITTEN, payload)
        if result.target_exists:
            raise ExposureError(
                f"{result.target} already exists, so the frame was spooled to "
                f"{result.path}; recover() writes it next to the existing file "
                "(as <stem>-recovered-<N>), which is never replaced."
            )
        if header_error is not None:
            raise ExposureError(
                f"The FITS header model failed ({header_error}); the frame was "
                f"written to {result.path} with a minimal header. Fix the model."
            )
        return hdulist

    def snapshot(self, context: dict[str, Any] | None = None) -> None:
        """Evaluates the header now, for a `write` that happens later.

        The header then describes the camera as it was when the frame was read
        (temperature, binning, ...), even if the write is queued behind others.
        """
        self._snapshot = self._evaluate(context)

    def _evaluate(
        self, context: dict[str, Any] | None
    ) -> tuple[fits.HDUList, str | None]:
        """The HDU list and, if the header model failed, why (blocking-free)."""
        try:
            return self.to_hdu(context=context), None
        except Exception as err:  # a broken header must never lose the frame
            if self.data is None:
                raise
            header_error = f"{type(err).__name__}: {err}"
            self.camera.log(
                f"Header model failed ({header_error}); writing the "
                "frame with a minimal header.",
                level=40,
            )
            return self._fallback_hdulist(header_error), header_error

    def _fallback_hdulist(self, error: str) -> fits.HDUList:
        """A single-HDU list with the frame and a header that cannot fail."""
        header = fits.Header()
        camera = self.camera
        cards = [
            ("CAMNAME", str(camera.name), "Camera name"),
            ("CAMUID", str(camera.uid), "Camera UID"),
            ("IMAGETYP", str(self.image_type), "Image type"),
            ("EXPTIME", self.exptime, "Exposure time of a frame [s]"),
            ("EXPTIMEN", self.exptime_n, "Total exposure time [s]"),
            ("STACK", int(self.stack), "Number of stacked frames"),
            ("DATE-OBS", self.obstime.tai.isot, "Start of the exposure (TAI)"),
        ]
        for key, value, comment in cards:
            header[key] = (value, comment)
        text = error.encode("ascii", "replace").decode()
        header.add_comment(f"camactor: header model failed: {text}"[:4000])
        return fits.HDUList([fits.PrimaryHDU(data=self.data, header=header)])
