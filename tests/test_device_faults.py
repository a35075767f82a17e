"""Device faults injected through the simulator, end to end over RabbitMQ.

Each fault of `camera_core.simfaults` is injected into a real actor (from the
configuration at start-up, or at run time), and each test checks the whole
story a client sees: the command ends with ``f`` and an error that says what
happened, within the command's own timeout; the status keywords then show the
camera usable or disconnected; and a later ``reconnect`` and ``expose`` work.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from actor_fixtures import BROKER, actor_config, keywords, send
from actor_test_helpers import (
    ReplyLog,
    camera,
    errors,
    fails,
    fits_files,
    ok,
    wait_for,
)
from clu import AMQPClient

from actor.actor import CameraActor

#: Seconds a terminal reply may arrive after the command's own timeout (the
#: time to notice, fail the command and carry the reply over the broker).
SLACK = 1.5


async def timed(client, actor, text: str, time_limit: float = 20.0):
    """Sends a command; returns it and the seconds to its terminal reply."""
    start = time.monotonic()
    command = await send(client, actor, text, time_limit=time_limit)
    return command, time.monotonic() - start


def status_of(command, name: str) -> dict[str, Any]:
    """The ``status`` keyword of camera ``name`` in a command's replies."""
    (value,) = [v for v in keywords(command, "status") if v["camera"] == name]
    return value


def state_of(command, name: str) -> dict[str, Any]:
    """The ``exposure_state`` keyword of camera ``name`` in a command's replies."""
    (value,) = [v for v in keywords(command, "exposure_state") if v["camera"] == name]
    return value


def fast_cooler(actor: CameraActor, name: str) -> None:
    """Makes a simulated cooler settle in a fraction of a second."""
    thermal = camera(actor, name).thermal
    _ = thermal.temperature  # settle the past at the old rates
    thermal.rate, thermal.tau = 100.0, 0.05


async def recovers(client, actor, tmp_path: Path, name: str) -> None:
    """A later ``reconnect`` works, then an exposure is taken and written."""
    command = await ok(client, actor, f"reconnect {name} --timeout 5")
    assert keywords(command, "camera_connected") == [
        {"camera": name, "uid": camera(actor, name).uid}
    ]
    before = len(fits_files(tmp_path, name))
    command = await ok(client, actor, f"expose {name} 0.05")
    (written,) = keywords(command, "filename")
    assert Path(written["path"]).is_file()
    assert len(fits_files(tmp_path, name)) == before + 1
    status = status_of(await ok(client, actor, f"status {name}"), name)
    assert (status["connected"], status["exposing"]) == (True, False)


class Started:
    """A running actor, a client and every reply the actor sent from start-up."""

    def __init__(self, actor: CameraActor, client: AMQPClient, log: ReplyLog):
        self.actor, self.client, self.log = actor, client, log

    def errors_for(self, name: str) -> list[str]:
        """The broadcast ``error`` keywords about camera ``name``."""
        return [
            value["error"]
            for _, value in self.log.values("error")
            if isinstance(value, dict) and value.get("camera") == name
        ]

    def connected(self, name: str) -> list[float]:
        """When ``camera_connected`` was broadcast for camera ``name``."""
        return [
            t for t, v in self.log.values("camera_connected") if v["camera"] == name
        ]


def faults(value: dict[str, Any]) -> pytest.MarkDecorator:
    """Runs a test with the `started` actor whose sim1 has these faults."""
    return pytest.mark.parametrize("started", [value], indirect=True, ids=[""])


@pytest.fixture
async def started(tmp_path, request) -> AsyncIterator[Started]:
    """An actor whose sim1 has the faults given as the fixture's parameter.

    The faults come from the configuration (``simulator: {faults: ...}`` of
    sim1), so they act from the first connection on. Only sim2 must connect
    for the actor to count as started.
    """
    config = actor_config(tmp_path)
    config["actor"]["poll_interval"] = 0.3
    config["cameras"]["sim1"]["simulator"]["faults"] = request.param
    config["cameras"]["sim1"]["cooling_timeout"] = 1.0
    config["cameras"]["sim1"]["exposure_timeout_margin"] = 2.0
    client = AMQPClient(**BROKER)
    await client.start()
    log = ReplyLog(config["actor"]["name"])
    client.add_reply_callback(log)  # before the actor starts: see start-up
    actor = CameraActor.from_config(config)
    await actor.start()
    try:
        await wait_for(lambda: bool(actor.camera_system.get_camera(name="sim2")), 10)
        await wait_for(lambda: camera(actor, "sim2").connected, 10)
        yield Started(actor, client, log)
    finally:
        await actor.stop()
        await client.stop()


# Connection failure at start-up.


@faults({"connect_failure": {"count": None}})
async def test_connect_failure_at_start_up(started: Started, tmp_path):
    actor, client = started.actor, started.client
    # The actor runs although sim1 cannot connect.
    await ok(client, actor, "ping")
    await wait_for(lambda: len(started.errors_for("sim1")) >= 1, 5)
    command = await ok(client, actor, "status")
    assert status_of(command, "sim1")["connected"] is False
    assert status_of(command, "sim2")["connected"] is True
    (cameras,) = keywords(await ok(client, actor, "list"), "cameras")
    assert {c["camera"]: c["connected"] for c in cameras} == {
        "sim1": False,
        "sim2": True,
    }
    # Commands on it fail at once, saying what to do.
    command, elapsed = await timed(client, actor, "expose sim1 0.05")
    assert command.status.did_fail and elapsed < SLACK
    assert "camera sim1 is not connected; try 'reconnect sim1'" in errors(command)
    command, elapsed = await timed(client, actor, "reconnect sim1 --timeout 2")
    assert command.status.did_fail and elapsed < 2 + SLACK
    assert "sim1: Simulated connection failure (SIM-1)" in errors(command)
    # The poller keeps retrying, and says so each time.
    count = len(started.errors_for("sim1"))
    await wait_for(lambda: len(started.errors_for("sim1")) >= count + 2, 5)
    assert set(started.errors_for("sim1")) == {"Simulated connection failure (SIM-1)."}
    assert started.connected("sim1") == []
    # The device comes back: the poller connects it without being asked.
    camera(actor, "sim1").clear_faults("connect_failure")
    await wait_for(lambda: bool(started.connected("sim1")), 5)
    assert camera(actor, "sim1").connected
    await recovers(client, actor, tmp_path, "sim1")


@faults({"connect_failure": {"count": 3}})
async def test_poller_connects_once_the_failures_are_used_up(
    started: Started, tmp_path
):
    actor, client = started.actor, started.client
    await ok(client, actor, "ping")
    await wait_for(lambda: bool(started.connected("sim1")), 10)
    assert len(started.errors_for("sim1")) == 3  # one per attempt, then connected
    (failures, connected) = (
        [t for t, v in started.log.values("error") if v.get("camera") == "sim1"],
        started.connected("sim1")[0],
    )
    assert max(failures) < connected
    assert "connect_failure" not in camera(actor, "sim1").faults
    command = await ok(client, actor, "status sim1")
    assert status_of(command, "sim1")["connected"] is True
    await recovers(client, actor, tmp_path, "sim1")


# Readout timeout.


@faults({"readout_timeout": {"count": 1}})
async def test_readout_timeout_fails_within_the_frame_timeout(started, tmp_path):
    actor, client = started.actor, started.client
    await wait_for(lambda: camera(actor, "sim1").connected, 5)
    margin = camera(actor, "sim1").exposure_timeout_margin  # from the config
    assert margin == 2.0
    command, elapsed = await timed(client, actor, "expose sim1 sim2 0.2 -c 3")
    assert command.status.did_fail
    assert 0.2 + margin <= elapsed < 0.2 + margin + SLACK
    message = errors(command)
    assert "sim1: Frame 1 on sim1 did not finish within 2.2 s" in message
    assert "Check the camera and its connection" in message
    assert fits_files(tmp_path, "sim1") == []  # the sequence ended with the frame
    assert len(fits_files(tmp_path, "sim2")) == 3  # the other camera went on
    command = await ok(client, actor, "status sim1")
    status, state = status_of(command, "sim1"), state_of(command, "sim1")
    assert (status["connected"], status["exposing"]) == (True, False)
    assert state["phase"] == "failed" and "did not finish within" in state["error"]
    await recovers(client, actor, tmp_path, "sim1")


@faults({})
async def test_readout_timeout_honours_the_command_timeout(started, tmp_path):
    actor, client = started.actor, started.client
    await wait_for(lambda: camera(actor, "sim1").connected, 5)
    camera(actor, "sim1").inject_fault("readout_timeout")  # every readout hangs
    command, elapsed = await timed(client, actor, "expose sim1 0.1 --timeout 0.5")
    assert command.status.did_fail and 0.6 <= elapsed < 0.6 + SLACK
    assert "did not finish within" in errors(command)
    # The camera is usable: the next exposure fails the same way, not "busy".
    command, elapsed = await timed(client, actor, "expose sim1 0 --timeout 0.3")
    assert command.status.did_fail and elapsed < 0.3 + SLACK
    assert "busy" not in errors(command) and "did not finish within" in errors(command)
    camera(actor, "sim1").clear_faults()
    await recovers(client, actor, tmp_path, "sim1")


# Unplugged in the middle of an exposure.


@faults({"unplug": {"after": 0.25}})
async def test_unplug_mid_exposure(started: Started, tmp_path):
    actor, client = started.actor, started.client
    await wait_for(lambda: camera(actor, "sim1").connected, 5)
    sim1 = camera(actor, "sim1")
    start = time.monotonic()
    command, elapsed = await timed(client, actor, "expose sim1 sim2 1.2")
    assert command.status.did_fail
    assert elapsed < 1.2 + 2.0 + SLACK  # sim2's exposure, within its timeout
    assert (
        "sim1: Exposure on sim1 failed: Camera sim1 (SIM-1) vanished during the "
        "exposure." in errors(command)
    )
    assert fits_files(tmp_path, "sim1") == []
    assert [w["camera"] for w in keywords(command, "filename")] == ["sim2"]
    lost = started.log.values("camera_disconnected")
    assert [(v["camera"], "vanished" in v["error"]) for _, v in lost] == [
        ("sim1", True)
    ]
    assert lost[0][0] - start < 1.2 * 0.25 + SLACK  # sim1 lost when unplugged
    # The poller drops the unplugged camera; commands naming it fail clearly.
    await wait_for(lambda: not actor.camera_system.get_camera(name="sim1"), 5)
    await fails(client, actor, "expose sim1 0.05", match="Unknown camera 'sim1'")
    command = await ok(client, actor, "status")
    assert [v["camera"] for v in keywords(command, "status")] == ["sim2"]
    # Plugged back in, the camera is found and connected again.
    connected = len(started.connected("sim1"))
    sim1.replug()
    await wait_for(lambda: len(started.connected("sim1")) > connected, 5)
    assert camera(actor, "sim1") is not sim1  # a new camera object
    assert "unplug" not in camera(actor, "sim1").faults
    await recovers(client, actor, tmp_path, "sim1")


@faults({})
async def test_unplug_reported_disconnected_while_kept(started: Started, tmp_path):
    actor, client = started.actor, started.client
    await wait_for(lambda: camera(actor, "sim1").connected, 5)
    await actor.camera_system.stop_camera_poller()  # keep it in the system
    sim1 = camera(actor, "sim1")
    sim1.inject_fault("unplug", after=0.5)
    command, elapsed = await timed(client, actor, "expose sim1 0.6 --timeout 10")
    assert command.status.did_fail and elapsed < 0.3 + SLACK
    assert "vanished during the exposure" in errors(command)
    command = await ok(client, actor, "status sim1")
    status = status_of(command, "sim1")
    assert (status["connected"], status["exposing"]) == (False, False)
    command, elapsed = await timed(client, actor, "reconnect sim1 --timeout 2")
    assert command.status.did_fail and elapsed < 2 + SLACK
    assert "sim1: Camera SIM-1 is unplugged." in errors(command)
    sim1.replug()
    await recovers(client, actor, tmp_path, "sim1")


# The cooler never settles.


@faults({"cooler_never_settles": {"offset": 3.0}})
async def test_cooler_never_settles(started: Started, tmp_path):
    actor, client = started.actor, started.client
    await wait_for(lambda: camera(actor, "sim1").connected, 5)
    fast_cooler(actor, "sim1")
    # The camera's cooling_timeout (1 s, from the configuration) bounds it.
    command, elapsed = await timed(client, actor, "temperature sim1 -5")
    assert command.status.did_fail and 1.0 <= elapsed < 1.0 + SLACK
    message = errors(command)
    assert "sim1: Set point -5.0 °C not reached within 1 s (CCD at -2." in message
    assert "Check the cooler, or allow a longer timeout." in message
    # An explicit --timeout wins.
    command, elapsed = await timed(client, actor, "temperature sim1 -6 --timeout 0.4")
    assert command.status.did_fail and 0.4 <= elapsed < 0.4 + SLACK
    assert "not reached within 0.4 s" in errors(command)
    failed = [v for _, v in started.log.values("temperature") if v["camera"] == "sim1"]
    assert failed[-1]["set_point"] == -6 and failed[-1]["reached"] is False
    # The camera stays usable: status reports the stalled cooler, exposures work.
    command = await ok(client, actor, "status sim1")
    (temperature,) = keywords(command, "temperature")
    assert temperature["reached"] is False
    assert temperature["ccd_temp"] == pytest.approx(-3.0, abs=0.5)
    await ok(client, actor, "expose sim1 0.05")
    # The cooler is fixed: after a reconnect the set point is reached.
    camera(actor, "sim1").clear_faults("cooler_never_settles")
    await recovers(client, actor, tmp_path, "sim1")
    command, elapsed = await timed(client, actor, "temperature sim1 -5 --timeout 5")
    assert command.status.did_succeed, errors(command)
    (temperature,) = keywords(command, "temperature")
    assert temperature["reached"] is True


# Faults from the configuration are checked when the camera system is built.


@pytest.mark.parametrize(
    ("faults", "match"),
    [
        ({"gremlins": {}}, "Unknown fault 'gremlins'"),
        ({"connect_failure": {"times": 2}}, "Unknown parameter(s) ['times']"),
        ({"connect_failure": {"count": 0}}, "at least 1"),
        ({"write_failure": {"errno": "ENOPE"}}, "Unknown errno name 'ENOPE'"),
        ({"unplug": {"after": 2}}, "in [0, 1]"),
        ({"unplug": 3}, "must be a mapping"),
        ([1], "must be a mapping"),
    ],
)
def test_bad_faults_in_the_config_are_refused(tmp_path, faults, match):
    from actor.daemon import ConfigUsageError, preflight

    config = actor_config(tmp_path)
    config["cameras"]["sim2"]["simulator"]["faults"] = faults
    with pytest.raises(ConfigUsageError) as info:
        preflight(config)
    message = str(info.value)
    assert "sim2" in message and match in message, message
