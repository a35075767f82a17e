"""Cooling policy: set points (0 °C included), ramps and timeouts."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from camera_core import CameraError, CameraEvent


async def test_set_point_zero_is_real(camera, events):
    assert await camera.set_temperature(0, timeout=5) is True
    assert camera.set_point == 0.0
    assert abs(await camera.get_temperature()) <= 0.5
    names = [event for event, _ in events]
    assert names.index(CameraEvent.NEW_SET_POINT) < names.index(
        CameraEvent.SET_POINT_REACHED
    )
    new = next(p for e, p in events if e is CameraEvent.NEW_SET_POINT)
    assert new["set_point"] == 0.0
    status = await camera.cooler_status()
    assert status["reached"] is True and status["ramping"] is False


async def test_timeout_fails_cleanly(camera, events):
    async def stuck(temperature):
        camera.target = 15.0  # the cooler cannot get below 15 °C

    camera._set_temperature_internal = stuck
    with pytest.raises(CameraError, match=r"not reached within 0\.3 s"):
        await asyncio.wait_for(camera.set_temperature(-10, timeout=0.3), 5)
    assert events[-1][0] is CameraEvent.SET_POINT_FAILED


async def test_ramp_moves_set_point_gradually(camera):
    commanded = []
    original = camera._set_temperature_internal

    async def record(temperature):
        commanded.append(temperature)
        await original(temperature)

    camera._set_temperature_internal = record
    # 600 °C/min = 10 °C/s: 20 -> 17 °C takes ~0.3 s in several steps.
    assert await camera.set_temperature(17, ramp=600, timeout=5) is True
    assert commanded[-1] == 17
    assert len(commanded) >= 3
    assert all(a >= b for a, b in itertools.pairwise(commanded))
    assert commanded[0] > 17


async def test_superseded_set_point_returns_false(camera):
    async def never(temperature):
        camera.target = 20.0

    camera._set_temperature_internal = never
    first = asyncio.create_task(camera.set_temperature(-20, timeout=5))
    await asyncio.sleep(0.05)
    camera._set_temperature_internal = type(camera)._set_temperature_internal.__get__(
        camera
    )
    assert await camera.set_temperature(20, timeout=5) is True
    assert await asyncio.wait_for(first, 1) is False


@pytest.mark.parametrize("bad", [float("nan"), "cold", None, True])
async def test_invalid_set_points(camera, bad):
    with pytest.raises(CameraError):
        await camera.set_temperature(bad)
