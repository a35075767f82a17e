"""Acceptance tests of the device commands over RabbitMQ.

``temperature``, ``shutter``, ``binning``, ``area`` and ``gain`` on a real actor
with two small simulated cameras, driven with CLU's AMQPClient (bounded by
``time_limit``). The system commands are in ``test_actor_system.py``.
"""

from __future__ import annotations

import time

import pytest
from actor_fixtures import keywords
from actor_test_helpers import (
    ReplyLog,
    camera,
    errors,
    fails,
    fits_files,
    image,
    ok,
    wait_for,
)


@pytest.fixture
def fast_cooler(actor):
    """Makes the simulated coolers settle in a fraction of a second."""
    for name in ("sim1", "sim2"):
        thermal = camera(actor, name).thermal
        _ = thermal.temperature  # settle the past at the old rates
        thermal.rate = 100.0  # °C per second while slewing
        thermal.tau = 0.05  # seconds, the final exponential approach
    return actor


def one(command, keyword: str, name: str = "sim1"):
    """The single value of ``keyword`` for camera ``name`` in a command."""
    values = [v for v in keywords(command, keyword) if v["camera"] == name]
    assert len(values) == 1, (keyword, name, values)
    return values[0]


# temperature


async def test_temperature_query(actor, client):
    command = await ok(client, actor, "temperature")
    for name in ("sim1", "sim2"):
        state = one(command, "temperature", name)
        assert state["ccd_temp"] == pytest.approx(20.0, abs=0.5)
        assert state["set_point"] is None
        assert state["reached"] is False
    command = await ok(client, actor, "temperature sim2")
    assert [t["camera"] for t in keywords(command, "temperature")] == ["sim2"]


async def test_temperature_zero_is_a_real_set_point(fast_cooler, client):
    actor = fast_cooler
    command = await ok(client, actor, "temperature 0")
    for name in ("sim1", "sim2"):
        state = one(command, "temperature", name)
        assert state["set_point"] == 0
        assert state["set_point"] is not None
        assert state["reached"] is True
        assert state["ccd_temp"] == pytest.approx(0.0, abs=0.5)
        assert camera(actor, name).set_point == 0.0
        assert camera(actor, name).thermal.set_point == 0.0
    command = await ok(client, actor, "temperature sim1")  # a query keeps it
    assert one(command, "temperature")["set_point"] == 0


async def test_temperature_negative(fast_cooler, client):
    actor = fast_cooler
    command = await ok(client, actor, "temperature sim1 -5")
    state = one(command, "temperature")
    assert (state["set_point"], state["reached"]) == (-5, True)
    assert state["ccd_temp"] == pytest.approx(-5.0, abs=0.5)
    assert camera(actor, "sim2").set_point is None


async def test_temperature_ramp(fast_cooler, client):
    actor = fast_cooler
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    start = time.monotonic()
    try:
        command = await ok(client, actor, "temperature sim1 10 --ramp 600")
    finally:
        client.remove_reply_callback(log)
    assert time.monotonic() - start > 0.8  # 10 °C at 10 °C/s
    state = one(command, "temperature")
    assert (state["set_point"], state["reached"], state["ramping"]) == (10, True, False)
    broadcast = [v for _, v in log.values("temperature") if v["camera"] == "sim1"]
    assert any(v["ramping"] for v in broadcast), broadcast


async def test_temperature_timeout_when_the_cooler_never_settles(fast_cooler, client):
    actor = fast_cooler
    camera(actor, "sim1").inject_fault("cooler_never_settles")
    start = time.monotonic()
    command = await fails(
        client, actor, "temperature sim1 -5 --timeout 0.5", time_limit=5
    )
    assert time.monotonic() - start < 1.5
    assert "not reached within 0.5 s" in errors(command)
    assert "sim1" in errors(command)


@pytest.mark.parametrize(
    "text, match",
    [
        ("temperature sim1 -100", "outside the camera range"),
        ("temperature sim1 --ramp 5", "need a TEMPERATURE"),
        ("temperature sim1 0 --ramp 0", ""),
        ("temperature sim1 0 --timeout -1", ""),
        ("temperature sim1 nan", "not a finite number"),
        ("temperature nocam 0", "Unknown camera 'nocam'"),
    ],
)
async def test_temperature_refused(actor, client, text, match):
    await fails(client, actor, text, match=match)
    assert camera(actor, "sim1").set_point is None


# shutter


async def test_shutter_open_close_and_query(actor, client):
    command = await ok(client, actor, "shutter sim1 --open")
    assert one(command, "shutter")["shutter"] == "open"
    command = await ok(client, actor, "shutter sim1")
    assert one(command, "shutter")["shutter"] == "open"
    assert await camera(actor, "sim1").get_shutter() is True
    command = await ok(client, actor, "shutter sim1 --close")
    assert one(command, "shutter")["shutter"] == "closed"
    assert await camera(actor, "sim1").get_shutter() is False
    command = await ok(client, actor, "shutter")
    assert {s["camera"]: s["shutter"] for s in keywords(command, "shutter")} == {
        "sim1": "closed",
        "sim2": "closed",
    }


async def test_shutter_open_and_close_together_refused(actor, client):
    await fails(client, actor, "shutter sim1 --open --close", match="not both")
    assert await camera(actor, "sim1").get_shutter() is False


async def test_shutter_refused_while_exposing(actor, client):
    await client.send_command(
        actor.name, "expose sim1 1", await_command=False, time_limit=10
    )
    await wait_for(lambda: camera(actor, "sim1").exposing)
    await fails(client, actor, "shutter sim1 --open", match="camera sim1 is busy")
    await ok(client, actor, "shutter sim1")  # a query is fine


# binning


async def test_binning_applies_to_the_frame(actor, client, tmp_path):
    command = await ok(client, actor, "binning sim1")
    assert one(command, "binning") == {"camera": "sim1", "horizontal": 1, "vertical": 1}
    command = await ok(client, actor, "binning sim1 2 2")
    assert one(command, "binning") == {"camera": "sim1", "horizontal": 2, "vertical": 2}
    await ok(client, actor, "expose sim1 0.05")
    assert image(fits_files(tmp_path, "sim1")[-1])[1] == (24, 32)
    command = await ok(client, actor, "binning sim1 4")  # V defaults to H
    assert one(command, "binning") == {"camera": "sim1", "horizontal": 4, "vertical": 4}
    command = await ok(client, actor, "binning sim1 1 2")
    assert one(command, "binning") == {"camera": "sim1", "horizontal": 1, "vertical": 2}
    await ok(client, actor, "expose sim1 0.05")
    assert image(fits_files(tmp_path, "sim1")[-1])[1] == (24, 64)
    command = await ok(client, actor, "binning sim2")
    assert one(command, "binning", "sim2")["horizontal"] == 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("binning sim1 0 0", "between 1 and 4"),
        ("binning sim1 0", "between 1 and 4"),
        ("binning sim1 2.5", "not an integer"),
        ("binning sim1 2 2.5", "not an integer"),
        ("binning sim1 5 5", "between 1 and 4"),
        ("binning sim1 -1 2", ""),
        ("binning nocam 2", "Unknown camera 'nocam'"),
    ],
)
async def test_binning_refused(actor, client, text, match):
    await fails(client, actor, text, match=match)
    assert await camera(actor, "sim1").get_binning() == (1, 1)


# area


async def test_area_set_query_reset(actor, client, tmp_path):
    full = {"camera": "sim1", "x0": 1, "x1": 64, "y0": 1, "y1": 48}
    command = await ok(client, actor, "area sim1")
    assert one(command, "area") == full
    command = await ok(client, actor, "area sim1 11 42 5 28")
    roi = {"camera": "sim1", "x0": 11, "x1": 42, "y0": 5, "y1": 28}
    assert one(command, "area") == roi
    command = await ok(client, actor, "area sim1")
    assert one(command, "area") == roi
    await ok(client, actor, "expose sim1 0.05")
    assert image(fits_files(tmp_path, "sim1")[-1])[1] == (24, 32)
    await ok(client, actor, "binning sim1 2")
    await ok(client, actor, "expose sim1 0.05")
    assert image(fits_files(tmp_path, "sim1")[-1])[1] == (12, 16)
    await ok(client, actor, "binning sim1 1")
    command = await ok(client, actor, "area sim1 --reset")
    assert one(command, "area") == full
    await ok(client, actor, "expose sim1 0.05")
    assert image(fits_files(tmp_path, "sim1")[-1])[1] == (48, 64)


@pytest.mark.parametrize(
    "text, match",
    [
        ("area sim1 1 65 1 48", "x1 must be between"),
        ("area sim1 1 64 0 48", "y0 must be between"),
        ("area sim1 1 64 1 49", "y1 must be between"),
        ("area sim1 40 10 1 48", "x1 must be between"),
        ("area sim1 1 2 3", "four integers"),
        ("area sim1 1 2 3 4.5", "not an integer"),
        ("area sim1 1 64 1 48 --reset", "not both"),
        ("area nocam 1 2 3 4", "Unknown camera 'nocam'"),
    ],
)
async def test_area_refused(actor, client, text, match):
    await fails(client, actor, text, match=match)
    assert await camera(actor, "sim1").get_image_area() == (1, 64, 1, 48)


# gain


async def test_gain_set_and_read_back(actor, client):
    command = await ok(client, actor, "gain sim1")
    assert one(command, "gain") == {
        "camera": "sim1",
        "gain": 1.5,
        "offset": 1000,
        "readout_mode": "normal",
    }
    command = await ok(
        client, actor, "gain sim1 --gain 3 --offset 500 --readout-mode fast"
    )
    expected = {"camera": "sim1", "gain": 3.0, "offset": 500, "readout_mode": "fast"}
    assert one(command, "gain") == expected
    command = await ok(client, actor, "gain sim1")
    assert one(command, "gain") == expected
    command = await ok(client, actor, "gain sim2")
    assert one(command, "gain", "sim2")["gain"] == 1.5
    command = await ok(client, actor, "gain sim1 --offset 0")
    assert one(command, "gain")["offset"] == 0


@pytest.mark.parametrize(
    "text, match",
    [
        ("gain sim1 --gain 2", "not one of"),
        ("gain sim1 --gain abc", ""),
        ("gain sim1 --offset -5", "offset"),
        ("gain sim1 --offset 20000", "offset"),
        ("gain sim1 --readout-mode slow", "not one of"),
        ("gain sim1 --readout-mode fast --gain 2", "not one of"),
        ("gain sim1 --gain 3 --offset 99999", "offset"),
        ("gain nocam --gain 1", "Unknown camera 'nocam'"),
    ],
)
async def test_gain_refused_changes_nothing(actor, client, text, match):
    await fails(client, actor, text, match=match)
    sim1 = camera(actor, "sim1")
    assert await sim1.get_gain() == 1.5
    assert await sim1.get_offset() == 1000
    assert await sim1.get_readout_mode() == "normal"
