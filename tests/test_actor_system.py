"""Acceptance tests of the system commands over RabbitMQ.

``status``, ``list``, ``set-default``, ``reconnect``, ``capabilities`` and CLU's
``version``, ``ping``, ``help`` and ``get_schema`` on a real actor with two
small simulated cameras, driven with CLU's AMQPClient (bounded by
``time_limit``).
"""

from __future__ import annotations

import json

import pytest
from actor_fixtures import keywords
from actor_test_helpers import (
    ReplyLog,
    camera,
    fails,
    fits_files,
    last,
    ok,
    wait_for,
)

from actor.actor import default_schema_path
from camera_core import CameraEvent, EventListener, __version__

BOTH = {"sim1", "sim2"}


def by_camera(command, keyword: str) -> dict[str, dict]:
    values = keywords(command, keyword)
    result = {value["camera"]: value for value in values}
    assert len(result) == len(values), values  # one per camera
    return result


# status


async def test_status_reports_every_camera(actor, client):
    command = await ok(client, actor, "status")
    assert keywords(command, "default_cameras") == [[]]
    status = by_camera(command, "status")
    assert set(status) == BOTH
    assert status["sim1"]["uid"] == "SIM-1"
    assert status["sim1"]["connected"] is True
    assert status["sim1"]["exposing"] is False
    assert status["sim1"]["device"]["model"] == "SimulatedCamera"
    for keyword in ("exposure_state", "temperature", "binning", "area", "shutter"):
        assert set(by_camera(command, keyword)) == BOTH, keyword
    assert set(by_camera(command, "gain")) == BOTH
    assert by_camera(command, "exposure_state")["sim1"]["phase"] == "idle"
    command = await ok(client, actor, "status sim2")
    assert set(by_camera(command, "status")) == {"sim2"}


async def test_status_while_exposing(actor, client):
    await client.send_command(
        actor.name, "expose sim1 1", await_command=False, time_limit=10
    )
    await wait_for(lambda: camera(actor, "sim1").progress.phase.value == "integrating")
    command = await ok(client, actor, "status sim1")
    assert by_camera(command, "status")["sim1"]["exposing"] is True
    state = by_camera(command, "exposure_state")["sim1"]
    assert state["phase"] == "integrating"
    assert 0 < state["remaining"] <= 1.0
    assert (state["count_n"], state["count_total"]) == (1, 1)


async def test_status_unknown_camera(actor, client):
    await fails(client, actor, "status nocam", match="Unknown camera 'nocam'")


# list


async def test_list(actor, client):
    command = await ok(client, actor, "list")
    (cameras,) = keywords(command, "cameras")
    assert cameras == [
        {"camera": "sim1", "uid": "SIM-1", "connected": True},
        {"camera": "sim2", "uid": "SIM-2", "connected": True},
    ]
    assert keywords(command, "default_cameras") == [[]]
    assert keywords(command, "available_cameras") == []
    command = await ok(client, actor, "list --available")
    assert keywords(command, "available_cameras") == [["SIM-1", "SIM-2"]]


# set-default


async def test_set_default(actor, client, tmp_path):
    command = await ok(client, actor, "set-default sim2")
    assert keywords(command, "default_cameras") == [["sim2"]]
    assert actor.default_cameras == ["sim2"]
    await ok(client, actor, "expose 0.05")
    assert fits_files(tmp_path, "sim1") == []
    assert len(fits_files(tmp_path, "sim2")) == 1
    command = await ok(client, actor, "list")
    assert keywords(command, "default_cameras") == [["sim2"]]
    command = await ok(client, actor, "set-default SIM-1 sim2")  # UIDs work too
    assert keywords(command, "default_cameras") == [["sim1", "sim2"]]
    command = await ok(client, actor, "set-default sim1 SIM-1 sim1")
    assert keywords(command, "default_cameras") == [["sim1"]]
    await ok(client, actor, "expose 0.05")  # not twice on sim1 ("busy")
    assert len(fits_files(tmp_path, "sim1")) == 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("set-default nocam", "Unknown camera 'nocam'"),
        ("set-default sim1 nocam", "Unknown camera 'nocam'"),
        ("set-default --force nocam", "Unknown camera 'nocam'"),
        ("set-default", ""),
    ],
)
async def test_set_default_refused(actor, client, text, match):
    await ok(client, actor, "set-default sim2")
    await fails(client, actor, text, match=match)
    assert actor.default_cameras == ["sim2"]  # unchanged
    await ok(client, actor, "ping")  # the actor is still alive


async def unplug(actor, client, name: str) -> None:
    """Unplugs a camera mid-exposure and waits until the poller removes it."""
    camera(actor, name).inject_fault("unplug", after=0.1)
    await fails(client, actor, f"expose {name} 0.2", match="vanished")
    await wait_for(lambda: not actor.camera_system.get_camera(name=name))


async def test_set_default_force(actor, client, tmp_path):
    await unplug(actor, client, "sim1")
    await fails(client, actor, "set-default sim1", match="use --force")
    command = await ok(client, actor, "set-default --force sim1")
    assert keywords(command, "default_cameras") == [["sim1"]]
    # The default camera is absent: commands without cameras must not fall
    # back to another camera.
    await fails(client, actor, "expose 0.05", match="sim1")
    assert fits_files(tmp_path, "sim2") == []


# reconnect


async def test_reconnect(actor, client):
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    try:
        command = await ok(client, actor, "reconnect sim1 --timeout 5")
    finally:
        client.remove_reply_callback(log)
    assert keywords(command, "camera_connected") == [{"camera": "sim1", "uid": "SIM-1"}]
    broadcast = [v for _, v in log.values("camera_disconnected")]
    assert broadcast == [{"camera": "sim1", "uid": "SIM-1", "error": None}]
    command = await ok(client, actor, "reconnect")
    assert {c["camera"] for c in keywords(command, "camera_connected")} == BOTH
    assert all(c.connected for c in actor.camera_system.cameras)


async def test_reconnect_after_unplug(actor, client, tmp_path):
    await actor.camera_system.stop_camera_poller()  # keep the camera in the system
    sim1 = camera(actor, "sim1")
    sim1.inject_fault("unplug", after=0.1)
    await fails(client, actor, "expose sim1 0.2", match="vanished")
    assert not sim1.connected
    await fails(client, actor, "expose sim1 0.05", match="not connected")
    command = await ok(client, actor, "status")  # a disconnected camera too
    status = by_camera(command, "status")
    assert (status["sim1"]["connected"], status["sim2"]["connected"]) == (False, True)
    command = await ok(client, actor, "list")
    assert [c["connected"] for c in keywords(command, "cameras")[0]] == [False, True]
    await fails(client, actor, "reconnect sim1 --timeout 2", match="unplugged")
    sim1.clear_faults("unplug")
    command = await ok(client, actor, "reconnect sim1 --timeout 2")
    assert keywords(command, "camera_connected") == [{"camera": "sim1", "uid": "SIM-1"}]
    await ok(client, actor, "expose sim1 0.05")
    assert len(fits_files(tmp_path, "sim1")) == 1


async def test_reconnect_does_not_blame_the_last_exposure(actor, client):
    camera(actor, "sim1").inject_fault("readout_timeout")
    await fails(client, actor, "expose sim1 0.05 --timeout 0.1", match="within")
    camera(actor, "sim1").clear_faults()
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    try:
        await ok(client, actor, "reconnect sim1")
    finally:
        client.remove_reply_callback(log)
    (disconnected,) = [v for _, v in log.values("camera_disconnected")]
    assert disconnected["error"] is None  # not "Frame 1 ... did not finish"


async def test_a_lost_camera_is_reported_once(actor, client):
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    try:
        await unplug(actor, client, "sim1")  # lost, then removed by the poller
        camera(actor, "sim2")  # still there
        await ok(client, actor, "ping")
    finally:
        client.remove_reply_callback(log)
    (disconnected,) = [v for _, v in log.values("camera_disconnected")]
    assert disconnected["camera"] == "sim1"
    assert "vanished" in disconnected["error"]
    command = await ok(client, actor, "list")
    (cameras,) = keywords(command, "cameras")
    assert [c["camera"] for c in cameras] == ["sim2"]


@pytest.mark.parametrize(
    "text, match",
    [("reconnect nocam", "Unknown camera 'nocam'"), ("reconnect --timeout 0", "")],
)
async def test_reconnect_refused(actor, client, text, match):
    await fails(client, actor, text, match=match)


# capabilities, version, ping, help, get_schema


async def test_capabilities(actor, client):
    command = await ok(client, actor, "capabilities")
    caps = by_camera(command, "capabilities")
    assert set(caps) == BOTH
    sim1 = caps["sim1"]
    for key in ("cooler", "shutter", "image_area", "exposure_type", "gain", "abort"):
        assert sim1[key] is True, key
    assert sim1["limits"]["width"] == 64
    assert sim1["limits"]["height"] == 48
    assert sim1["limits"]["max_binning"] == [4, 4]
    assert sim1["limits"]["readout_modes"] == ["normal", "fast"]
    command = await ok(client, actor, "capabilities sim2")
    assert set(by_camera(command, "capabilities")) == {"sim2"}
    await fails(client, actor, "capabilities nocam", match="Unknown camera")


async def test_version_and_ping(actor, client):
    command = await ok(client, actor, "version")
    assert last(command)["version"] == __version__
    command = await ok(client, actor, "ping")
    assert last(command)["text"] == "Pong."


async def test_help(actor, client):
    command = await ok(client, actor, "help")
    text = "\n".join(last(command)["help"])
    for name in (
        "expose abort stop finish status list set-default reconnect temperature "
        "shutter binning area gain capabilities get_schema ping version"
    ).split():
        assert f"  {name} " in text, name
    command = await ok(client, actor, "help expose")
    text = "\n".join(last(command)["help"])
    for option in ("--flat", "--bias", "--filename", "--num", "--stack", "--count"):
        assert option in text, option
    await fails(client, actor, "help nocommand", match="not found")


async def test_get_schema(actor, client):
    command = await ok(client, actor, "get_schema")
    schema = json.loads(last(command)["schema"])
    ours = json.loads(default_schema_path().read_text())
    for keyword, definition in ours["properties"].items():
        assert schema["properties"][keyword] == definition, keyword
    for keyword in (
        "exposure_state filename temperature status binning area shutter gain "
        "capabilities camera_connected camera_disconnected default_cameras "
        "cameras error text"
    ).split():
        assert keyword in schema["properties"], keyword
    assert schema["additionalProperties"] is False


# Option values click refuses: the terminal error must say what is wrong.

CLICK_REFUSALS = [
    ("expose sim1 0.1 --count 0", "Invalid value for '-c' / '--count'"),
    ("expose sim1 0.1 --stack 0", "Invalid value for '-s' / '--stack'"),
    ("temperature sim1 0 --ramp 0", "Invalid value for '--ramp'"),
    ("gain sim1 --gain abc", "Invalid value for '--gain'"),
    ("reconnect --timeout 0", "Invalid value for '--timeout'"),
    ("set-default", "Missing argument"),
]


@pytest.mark.parametrize("text, reason", CLICK_REFUSALS)
async def test_click_refusals_name_the_reason_in_the_error(actor, client, text, reason):
    command = await fails(client, actor, text)
    assert reason in last(command)["error"], last(command)["error"]


# camera_core events behind camera_disconnected.


def record_events(actor) -> list:
    seen: list = []

    class Recorder(EventListener):
        def put_event(self, event, payload):
            seen.append((event, payload))

    actor.camera_system.notifier.register_listener(Recorder(autostart=False))
    return seen


async def test_camera_core_reports_a_lost_camera_once(actor):
    await actor.camera_system.stop_camera_poller()
    seen = record_events(actor)
    sim1 = camera(actor, "sim1")
    sim1.connection_lost("gone")
    await sim1.disconnect()
    lost = [p for e, p in seen if e is CameraEvent.CAMERA_DISCONNECTED]
    assert len(lost) == 1, lost


async def test_camera_core_disconnect_has_no_stale_error(actor, client):
    camera(actor, "sim1").inject_fault("readout_timeout")
    await fails(client, actor, "expose sim1 0.05 --timeout 0.1", match="within")
    camera(actor, "sim1").clear_faults()
    seen = record_events(actor)
    await camera(actor, "sim1").disconnect()
    (payload,) = [p for e, p in seen if e is CameraEvent.CAMERA_DISCONNECTED]
    assert payload.get("error") is None, payload
