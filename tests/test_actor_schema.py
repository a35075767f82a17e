"""Every reply the actor emits validates against ``schema/camactor.json``.

The whole command suite (successes, refusals, faults, exposures interrupted by
abort/stop/finish, disconnections) runs against a real actor with validation
on, while a client records every reply the actor sends on the bus (command
replies and broadcasts, from start-up on). No reply may be a CLU "Failed
validating" error, and each body must validate against the schema file,
which also rejects keywords the schema does not define.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from actor_fixtures import BROKER, actor_config, send, start_actor
from actor_test_helpers import ReplyLog, camera, wait_for
from clu import AMQPClient

from camera_core.journal import ExposureJournal

#: The schema file of the repository (what the actor must conform to).
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema" / "camactor.json"

#: Commands run in order; defaults are set to both cameras early on.
SIMPLE = [
    "ping",
    "version",
    "help",
    "help expose",
    "help nocommand",
    "get_schema",
    "keyword exposure_state",
    "keyword nokeyword",
    "get-command-model",
    "get-command-model expose",
    "status",
    "status sim1",
    "status nocam",
    "list",
    "list --available",
    "capabilities",
    "capabilities nocam",
    "set-default sim1",
    "set-default nocam",
    "set-default",
    "set-default --force sim1 sim2",
    "temperature",
    "temperature sim1 0",
    "temperature sim2 -5 --ramp 3000",
    "temperature sim1 -100",
    "temperature sim1 nan",
    "temperature --ramp 5",
    "shutter --open",
    "shutter",
    "shutter sim1 --close",
    "binning sim1 2 2",
    "binning",
    "binning 0 0",
    "binning 2.5",
    "area sim1 1 32 1 24",
    "area",
    "area sim1 --reset",
    "area sim1 1 100 1 48",
    "area 1 2 3",
    "gain --gain 3 --offset 10 --readout-mode fast",
    "gain",
    "gain --gain 2",
    "gain --readout-mode slow",
    "gain --offset -1",
    "expose sim1 0.05",
    "expose 0.05 --flat",
    "expose sim1 --bias",
    "expose sim1 0.05 --dark -n 0",
    "expose sim1 0.05 -f custom.fits",
    "expose sim1 0.05 -s 2",
    "expose sim1 0.05 -c 2",
    "expose sim1 0.05 --no-postprocess",
    "expose sim1",
    "expose sim1 -- -1",
    "expose nocam 1",
    "expose sim1 sim2 0.05 -f both.fits",
    "expose sim1 0.05 --exposure-id schema-1",
    "expose sim1 0.05 --exposure-id schema-1",
    "expose sim1 0.5 --exposure-id schema-1",
    "expose sim1 0.05 --exposure-id 'bad id'",
    "history",
    "history --camera sim1 --last 2",
    "history --last 0",
    "abort",
    "stop",
    "finish",
    "reconnect sim2",
    "reconnect nocam",
    "reconnect --timeout 0",
    "recover",
    "",
    "nonsense",
    'expose "unbalanced',
    "expose --bogus 1",
]

#: Schema keywords the suite need not produce.
NOT_EXERCISED = frozenset()


def check_replies(replies: list[tuple[float, str, dict[str, Any]]]) -> list[str]:
    """Every problem with the recorded replies, as readable strings."""
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for _, code, body in replies:
        if "Failed validating" in json.dumps(body):
            problems.append(f"CLU refused a reply: {body}")
        for error in validator.iter_errors(body):
            problems.append(f"{code} {json.dumps(body)[:300]}: {error.message}")
    return problems


async def start_in_background(actor, client, text: str):
    command = await client.send_command(
        actor.name, text, await_command=False, time_limit=15
    )
    sim1 = camera(actor, "sim1")
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    return command


async def run_suite(actor, client) -> None:
    for name in ("sim1", "sim2"):
        cam = camera(actor, name)
        cam.write_backoff = 0.01
        _ = cam.thermal.temperature
        cam.thermal.rate, cam.thermal.tau = 100.0, 0.05
    for text in SIMPLE:
        await send(client, actor, text, time_limit=10)

    # Busy camera, stop, abort and finish.
    first = await start_in_background(actor, client, "expose sim1 1.2")
    for text in ("expose sim1 0.1", "status sim1", "shutter sim1 --open"):
        await send(client, actor, text, time_limit=5)
    await send(client, actor, "binning sim1 2", time_limit=5)
    await send(client, actor, "stop sim1", time_limit=5)
    await asyncio.wait_for(first, 5)
    first = await start_in_background(actor, client, "expose sim1 5")
    await send(client, actor, "abort sim1", time_limit=5)
    await asyncio.wait_for(first, 5)
    first = await start_in_background(actor, client, "expose sim1 -c 3 0.3")
    await send(client, actor, "finish sim1", time_limit=5)
    await asyncio.wait_for(first, 5)

    # Faults.
    sim1, sim2 = camera(actor, "sim1"), camera(actor, "sim2")
    sim2.inject_fault("readout_timeout")
    await send(client, actor, "expose sim1 sim2 0.05 --timeout 0.2", time_limit=5)
    sim2.clear_faults()
    sim1.inject_fault("write_failure")
    await send(client, actor, "expose sim1 0.05", time_limit=5)
    sim1.inject_fault("write_failure", include_spool=True)  # kept in memory
    await send(client, actor, "expose sim1 0.05", time_limit=5)
    sim1.clear_faults()
    await send(client, actor, "recover", time_limit=5)
    # Quick look failures are warnings (frame_stats and preview with error).
    blocker = actor.data_dir / "not-a-directory"
    blocker.write_text("")
    quicklook = actor.quicklook
    actor.quicklook = dataclasses.replace(quicklook, dir=blocker)
    sim1.camera_params["saturation"] = "not a number"
    await send(client, actor, "expose sim1 0.05", time_limit=5)
    actor.quicklook = quicklook
    del sim1.camera_params["saturation"]
    sim2.inject_fault("cooler_never_settles")
    await send(client, actor, "temperature sim2 -10 --timeout 0.3", time_limit=5)
    sim2.clear_faults()
    sim2.inject_fault("connect_failure", count=1)
    await send(client, actor, "reconnect sim2", time_limit=5)
    await send(client, actor, "reconnect sim2", time_limit=5)

    # A camera vanishes, is removed by the poller, and comes back.
    sim1.inject_fault("unplug", after=0.1)
    await send(client, actor, "expose sim1 0.2", time_limit=5)
    await wait_for(lambda: not actor.camera_system.get_camera(name="sim1"))
    for text in ("status", "list", "expose 0.05", "set-default sim1", "reconnect"):
        await send(client, actor, text, time_limit=5)
    sim1.clear_faults()
    await wait_for(lambda: bool(actor.camera_system.get_camera(name="sim1")))
    await wait_for(lambda: camera(actor, "sim1").connected)
    for text in ("reconnect sim1", "status"):
        await send(client, actor, text, time_limit=5)
    await asyncio.sleep(0.3)  # let the last broadcasts arrive


async def crashed_journal(path: Path) -> None:
    """A journal with an exposure in flight, as a killed actor leaves it.

    The actor reports it with ``interrupted_exposures`` when it starts
    (tests/test_actor_history.py kills a real actor for this).
    """
    journal = ExposureJournal(path)
    journal.requested("lost-1", "sim1", {"exptime": 1.0, "image_type": "object"})
    journal.append("lost-1", "integrating", camera="sim1")
    await journal.close()


@pytest.fixture
async def recorded(tmp_path):
    """Runs the suite; returns the actor's replies and its command names."""
    config = actor_config(tmp_path)
    await crashed_journal(tmp_path / "data" / "journal.sqlite")
    log = ReplyLog(config["actor"]["name"])
    client = AMQPClient(**BROKER)
    await client.start()
    client.add_reply_callback(log)  # before the actor starts: see start-up
    actor = await start_actor(config)
    try:
        await run_suite(actor, client)
        yield log.replies, set(actor.parser.commands)
    finally:
        await actor.stop()
        await client.stop()


async def test_every_reply_validates(recorded):
    replies, commands = recorded
    suite = {text.split()[0] for text in SIMPLE if text.split()}
    assert commands <= suite, f"commands not in the suite: {commands - suite}"
    assert len(replies) > 200
    problems = check_replies(replies)
    assert not problems, "\n".join(problems[:20])
    schema = json.loads(SCHEMA_FILE.read_text())
    seen = {keyword for _, _, body in replies for keyword in body}
    unseen = set(schema["properties"]) - seen - NOT_EXERCISED
    assert not unseen, f"the suite never produced {sorted(unseen)}"
    codes = {code for _, code, _ in replies}
    assert {">", "i", "w", "e", "f", ":"} <= codes, codes


def test_the_checker_can_fail():
    good = (0.0, "i", {"text": "hello"})
    assert check_replies([good]) == []
    assert check_replies([(0.0, "i", {"not_a_keyword": 1})])
    assert check_replies([(0.0, "i", {"binning": {"camera": "sim1"}})])
    assert check_replies([(0.0, "e", {"error": "Failed validating the reply: x"})])


def test_the_schema_is_closed():
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for keyword, definition in schema["properties"].items():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, keyword
