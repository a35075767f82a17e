"""Exposure policy: validation, abort, stop, timeouts, progress and stacking."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from astropy.io import fits

from camera_core import (
    CameraBusyError,
    CameraError,
    CameraEvent,
    ExposureAborted,
    ExposureError,
    ExposureTimeout,
)


async def test_expose_writes_frame_with_header(camera, events):
    exposure = await camera.expose(0.02, image_type="flat", write=True)
    path = exposure.write_result.path
    assert path.name == "cam1-0001.fits"
    with fits.open(path, checksum=True) as hdul:
        header = hdul[0].header
        assert header["IMAGETYP"] == "flat"
        assert header["EXPTIME"] == pytest.approx(0.02)
        assert header["VCAM"] == "1.2.3"
        assert "DATASUM" in header and "CHECKSUM" in header
        assert np.all(hdul[0].data == 100)
    names = [event for event, _ in events]
    for expected in (
        CameraEvent.EXPOSURE_FLUSHING,
        CameraEvent.EXPOSURE_INTEGRATING,
        CameraEvent.EXPOSURE_READING,
        CameraEvent.EXPOSURE_READ,
        CameraEvent.EXPOSURE_WRITING,
        CameraEvent.EXPOSURE_WRITTEN,
        CameraEvent.EXPOSURE_DONE,
    ):
        assert expected in names
    assert names.index(CameraEvent.EXPOSURE_WRITTEN) < names.index(
        CameraEvent.EXPOSURE_DONE
    )
    assert camera.progress.phase.value == "done"


async def test_zero_exptime_and_bias(camera):
    exposure = await camera.expose(0.0, image_type="dark")
    assert exposure.exptime == 0.0
    assert exposure.shutter_open is False
    assert np.all(exposure.data == 10)

    bias = await camera.expose(5.0, image_type="bias")
    assert bias.exptime == 0.0  # bias frames are always 0 s
    assert bias.shutter_open is False


async def test_sequence_number_zero_is_used(camera, tmp_path):
    exposure = await camera.expose(0.0, num=0, write=True)
    assert exposure.write_result.path == tmp_path / "data" / "cam1-0000.fits"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exptime": -1}, "≥ 0"),
        ({"exptime": float("nan")}, "≥ 0"),
        ({"exptime": 1, "image_type": "science"}, "Invalid image type"),
        ({"exptime": 1, "stack": 0}, "Stack"),
    ],
)
async def test_invalid_exposures_are_refused(camera, kwargs, message):
    with pytest.raises(ExposureError, match=message):
        await camera.expose(**kwargs)
    assert not camera.exposing


async def test_busy_camera_refuses_second_exposure(camera):
    first = asyncio.create_task(camera.expose(0.5))
    await asyncio.sleep(0.05)
    with pytest.raises(CameraBusyError, match="camera cam1 is busy"):
        await camera.expose(0.1)
    await camera.abort()
    with pytest.raises(ExposureAborted):
        await first


async def test_abort_mid_integration(camera, events):
    task = asyncio.create_task(camera.expose(30.0, write=True))
    await asyncio.sleep(0.1)
    assert camera.progress.phase.value == "integrating"
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await camera.abort() is True
    with pytest.raises(ExposureAborted):
        await task
    assert loop.time() - start < 1.0
    assert not camera.exposing
    names = [event for event, _ in events]
    assert names[-1] is CameraEvent.EXPOSURE_ABORTED
    assert CameraEvent.EXPOSURE_WRITTEN not in names
    assert not list((camera.image_namer.get_dirname()).glob("*.fits"))
    # The camera is usable afterwards.
    exposure = await camera.expose(0.0)
    assert exposure.data is not None


async def test_abort_when_idle_is_an_error(camera):
    with pytest.raises(CameraError, match="no exposure to abort"):
        await camera.abort()


async def test_stop_reads_out_early(camera, events):
    task = asyncio.create_task(camera.expose(30.0))
    await asyncio.sleep(0.2)
    await camera.stop()
    exposure = await asyncio.wait_for(task, 2)
    assert 0.1 < exposure.exptime < 5.0
    assert exposure.data is not None
    assert CameraEvent.EXPOSURE_STOPPED in [event for event, _ in events]


async def test_stop_when_not_integrating_is_an_error(camera):
    with pytest.raises(CameraError, match="not integrating"):
        await camera.stop()


async def test_readout_timeout_fails_cleanly(camera, events):
    camera.hang_readout = True
    camera.exposure_timeout_margin = 0.2
    with pytest.raises(ExposureTimeout, match="readout margin"):
        await asyncio.wait_for(camera.expose(0.05), 5)
    assert not camera.exposing
    assert events[-1][0] is CameraEvent.EXPOSURE_FAILED
    assert "did not finish" in events[-1][1]["error"]
    camera.hang_readout = False
    assert (await camera.expose(0.0)).data is not None


async def test_progress_counts_down(camera):
    task = asyncio.create_task(camera.expose(0.6, stack=2))
    samples = []
    while not task.done():
        progress = camera.progress.to_dict()
        if progress["phase"] == "integrating":
            samples.append((progress["stack_n"], progress["remaining"]))
        await asyncio.sleep(0.05)
    await task
    first = [r for n, r in samples if n == 1]
    assert len(first) >= 3
    assert all(a > b for a, b in itertools.pairwise(first))
    assert first[0] > 0.6  # the second frame is still to come
    assert camera.progress.to_dict()["total"] == pytest.approx(1.2)
    assert camera.progress.remaining == 0


async def test_median_stack_of_five(camera, tmp_path):
    exposure = await camera.expose(0.01, stack=5, write=True)
    assert exposure.data.dtype == np.float32
    with fits.open(exposure.write_result.path) as hdul:
        header = hdul[0].header
        assert header["STACK"] == 5
        assert header["EXPTIMEN"] == pytest.approx(0.05)
        assert header["STACKFUN"] == "median"
        assert np.all(hdul[0].data == 100)


async def test_stack_function_runs_on_float32(camera):
    seen = {}

    def spread(cube, axis=0):
        seen["dtype"] = cube.dtype
        seen["shape"] = cube.shape
        return cube.max(axis=axis) - cube.min(axis=axis)

    exposure = await camera.expose(0.0, stack=3, stack_function=spread)
    assert seen["dtype"] == np.float32
    assert seen["shape"][0] == 3
    assert np.all(exposure.data == 0)


async def test_capabilities_come_from_the_mro(camera):
    caps = camera.capabilities
    assert caps["cooler"] and caps["shutter"] and caps["image_area"]
    assert caps["exposure_type"] and caps["stop"] and not caps["gain"]
    assert caps["limits"]["max_binning"] == [4, 4]
    assert caps["limits"]["width"] == 48


async def test_binning_and_area_validation(camera):
    assert await camera.set_binning(2) == (2, 2)
    for bad in (0, 5, True, 1.5):
        with pytest.raises(CameraError):
            await camera.set_binning(bad)
    with pytest.raises(CameraError):
        await camera.set_image_area((10, 5, 1, 32))
    with pytest.raises(CameraError):
        await camera.set_image_area((1, 49, 1, 32))
    assert await camera.set_image_area((1, 16, 1, 8)) == (1, 16, 1, 8)
    exposure = await camera.expose(0.0)
    assert exposure.data.shape == (4, 8)
    assert await camera.set_image_area(None) == (1, 48, 1, 32)


async def test_shutter(camera):
    assert await camera.set_shutter(True) is True
    assert await camera.close_shutter() is False
    with pytest.raises(CameraError):
        await camera.set_shutter("open")
