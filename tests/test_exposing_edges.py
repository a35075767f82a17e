"""Exposure policy edge cases: races, stop in stacks, header failures, hooks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fakes import open_verified

from camera_core import (
    CameraEvent,
    Card,
    ExposureAborted,
    ExposureError,
    ExposureTimeout,
    FITSModel,
    basic_fits_model,
)


async def test_abort_during_slow_readout_discards_frame(camera, events):
    camera.readout_time = 0.3
    task = asyncio.create_task(camera.expose(0.05, write=True))
    while camera.progress.phase.value != "reading":
        await asyncio.sleep(0.01)
    assert await camera.abort() is True
    with pytest.raises(ExposureAborted):
        await task
    names = [event for event, _ in events]
    assert CameraEvent.EXPOSURE_WRITTEN not in names
    assert CameraEvent.EXPOSURE_DONE not in names
    assert names[-1] is CameraEvent.EXPOSURE_ABORTED
    assert camera.hooks == ["abort"]
    assert not list(camera.image_namer.get_dirname().glob("*.fits"))


async def test_stop_in_a_stack_ends_the_stack_with_true_times(camera):
    task = asyncio.create_task(camera.expose(0.3, stack=3, write=True))
    while not (
        camera.progress.stack_n == 2 and camera.progress.phase.value == "integrating"
    ):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    await camera.stop()
    exposure = await asyncio.wait_for(task, 5)
    assert camera.hooks == ["stop"]
    assert exposure.stack == 2
    assert 0.35 < exposure.exptime_n < 0.45  # 0.3 s + about 0.1 s
    with open_verified(exposure.write_result.path) as hdul:
        assert hdul[0].header["STACK"] == 2
        assert hdul[0].header["EXPTIMEN"] == pytest.approx(exposure.exptime_n)


async def test_median_stack_uses_the_stack_function(camera):
    camera.frame_values = [1, 2, 3, 4, 100]
    median = await camera.expose(0.0, stack=5)
    assert np.all(median.data == 3)
    camera.frames_read = 0
    mean = await camera.expose(0.0, stack=5, stack_function=np.mean)
    assert np.allclose(mean.data, 22)


async def test_driver_that_ignores_cancel_cannot_stretch_timeout(camera):
    camera.cancel_grace = 0.2

    async def stubborn(exposure, **kwargs):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(2)  # a driver that takes its time to clean up

    camera._expose_internal = stubborn
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ExposureTimeout):
        await camera.expose(0.0, timeout_margin=0.2)
    assert loop.time() - start < 1.5


async def test_broken_header_still_writes_the_frame(camera):
    model = FITSModel()
    model[0].header_model.append(Card("OBSERVER", "{__camera__.nmae}"))
    with pytest.raises(ExposureError, match="minimal header"):
        await camera.expose(0.0, image_type="flat", fits_model=model, write=True)
    files = list(camera.image_namer.get_dirname().glob("*.fits"))
    assert len(files) == 1
    with open_verified(files[0]) as hdul:
        assert np.all(hdul[0].data == 100)
        assert hdul[0].header["IMAGETYP"] == "flat"
        assert "header model failed" in str(hdul[0].header["COMMENT"])
    assert camera.unsaved_exposures == []


async def test_existing_target_spools_instead_of_dropping(camera, tmp_path, spool):
    target = tmp_path / "taken.fits"
    target.write_bytes(b"precious")
    with pytest.raises(ExposureError, match="already exists, so the frame was spooled"):
        await camera.expose(0.0, filename=target, write=True)
    assert target.read_bytes() == b"precious"
    spooled = list(spool.glob("*.fits"))
    assert len(spooled) == 1
    with open_verified(spooled[0]) as hdul:
        assert hdul[0].data.shape == (32, 48)


async def test_camera_model_changes_stay_in_the_camera(camera):
    camera.fits_model[0].header_model.append(Card("TELESCOP", "APO-2.5"))
    assert all(card != "TELESCOP" for card in basic_fits_model[0].header_model)
    exposure = await camera.expose(0.0, write=True)
    with open_verified(exposure.write_result.path) as hdul:
        assert hdul[0].header["TELESCOP"] == "APO-2.5"
    # An exposure's own copy does not leak back into the camera's model.
    exposure.fits_model[0].header_model.append(Card("EXTRA", 1))
    assert (
        len(camera.fits_model[0].header_model)
        == len(basic_fits_model[0].header_model) + 1
    )


async def test_postprocess_hook_and_events(camera, events):
    async def post(exposure, **kwargs):
        exposure.data = exposure.data + 1

    camera._post_process_internal = post
    type(camera)._has_post_process = lambda self: True
    try:
        exposure = await camera.expose(0.0, image_type="flat")
        assert np.all(exposure.data == 101)
        skipped = await camera.expose(0.0, image_type="flat", postprocess=False)
        assert np.all(skipped.data == 100)
    finally:
        del type(camera)._has_post_process
    names = [event for event, _ in events]
    assert names.count(CameraEvent.EXPOSURE_POST_PROCESSING) == 1
    assert names.count(CameraEvent.EXPOSURE_POST_PROCESS_DONE) == 1


async def test_exposure_type_shortcuts(camera):
    bias = await camera.bias()
    assert bias.image_type == "bias" and bias.exptime == 0.0
    dark = await camera.dark(0.01)
    assert dark.image_type == "dark" and not dark.shutter_open
    flat = await camera.flat(0.01)
    assert np.all(flat.data == 100)


async def test_ramp_from_non_integer_start(camera):
    camera.temp = camera.target = 20.1
    assert await camera.set_temperature(19.7, ramp=600, timeout=5) is True
    assert camera.target == 19.7


async def test_system_recover_is_async(camera, tmp_path, spool):
    import errno

    camera.write_fault = lambda path, is_spool: (
        None if is_spool else (_ for _ in ()).throw(OSError(errno.EIO, "I/O error"))
    )
    camera.write_retries = 0
    exposure = await camera.expose(0.0, write=True)
    assert exposure.write_result.spooled
    camera.write_fault = None
    results = await camera.camera_system.recover()
    assert [r.recovered for r in results if r.target == exposure.write_result.target]
    with open_verified(exposure.write_result.target) as hdul:
        assert hdul[0].data.shape == (32, 48)


async def test_background_write_leaves_the_next_exposures_progress(camera, tmp_path):
    """Writing frame 1 while frame 2 integrates does not report frame 2 writing."""
    first = await camera.expose(0.01, write=False)
    second = asyncio.create_task(camera.expose(0.5, write=False))
    while camera.progress.phase.value != "integrating":
        await asyncio.sleep(0.01)
    current = camera.progress.exposure_id
    assert current != first.exposure_id
    await first.write(tmp_path / "first.fits")
    assert camera.progress.phase.value == "integrating"
    assert camera.progress.exposure_id == current
    await asyncio.wait_for(second, 5)
