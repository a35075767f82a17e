"""The actor survives a RabbitMQ restart: ``stop_app``/``start_app`` for real.

Every test runs an actor and a stock CLU `AMQPClient` on a private RabbitMQ
node (`broker_processes.rabbit_node`), then stops and starts the node's
RabbitMQ application: every connection is closed by the broker and nothing
listens until it is back, exactly as in a broker restart. The shared broker on
port 5672 is never touched.
"""

from __future__ import annotations

import asyncio
import time

import aiormq
import pytest
from actor_fixtures import actor_config, keywords, start_actor
from actor_test_helpers import ReplyLog, camera, codes, fits_files, wait_for
from astropy.io import fits
from broker_processes import RabbitNode, port_open
from clu import AMQPClient
from clu.tools import CommandStatus

from actor.actor import CameraActor

#: The actor must answer within this many seconds of the broker's return.
ANSWER_WITHIN = 10.0


@pytest.fixture
async def node(rabbit_node: RabbitNode):
    """The private node, its RabbitMQ application running again afterwards."""
    yield rabbit_node
    if not port_open(rabbit_node.port):
        await asyncio.to_thread(rabbit_node.start_app)


@pytest.fixture
async def node_actor(node: RabbitNode, tmp_path):
    config = actor_config(tmp_path)
    config["actor"].update(node.broker)
    actor = await start_actor(config)
    yield actor
    await actor.stop()


@pytest.fixture
async def node_client(node: RabbitNode):
    client = AMQPClient(**node.broker)
    await client.start()
    yield client
    await client.stop()


async def stop_app(node: RabbitNode, actor: CameraActor) -> None:
    """Stops the broker app; returns once the actor has seen the outage."""
    await asyncio.to_thread(node.stop_app)
    await wait_for(lambda: not actor.outbox.connected, timeout=5)


async def start_app(node: RabbitNode) -> float:
    """Starts the broker app again; returns when it listened again."""
    await asyncio.to_thread(node.start_app)
    return time.monotonic()


async def status_after_restart(
    client: AMQPClient, actor: CameraActor, back: float
) -> float:
    """Sends ``status`` until it succeeds; seconds from ``back`` to its answer.

    The client reconnects on its own schedule (CLU: every 5 s), and until then
    publishing fails at once; a status sent to an actor that has not
    reconnected yet is unroutable and fails at once too. Both are retried until
    ANSWER_WITHIN seconds after the broker's return.
    """
    errors: list[str] = []
    while time.monotonic() - back < ANSWER_WITHIN:
        try:
            command = await client.send_command(actor.name, "status", time_limit=2)
        except (RuntimeError, aiormq.exceptions.AMQPError) as err:
            errors.append(type(err).__name__)  # the client is not back yet
            await asyncio.sleep(0.1)
            continue
        if command.status.did_succeed:
            return time.monotonic() - back
        errors.append(f"{command.status.name}: {command.replies[-1].message}")
    pytest.fail(f"No status answer within {ANSWER_WITHIN:g} s: {errors[-5:]}")


def bindings_of(node: RabbitNode, actor: CameraActor) -> set[tuple[str, str]]:
    """The (queue, routing key) bindings of the actor's queues on sdss_exchange."""
    queues = {f"{actor.name}_replies", f"{actor.name}_commands"}
    return {
        (queue, key)
        for source, queue, key in node.bindings()
        if source == "sdss_exchange" and queue in queues
    }


async def test_idle_restart_answers_status_within_10_s(
    node: RabbitNode, node_actor: CameraActor, node_client: AMQPClient
):
    actor = node_actor
    expected = {
        (f"{actor.name}_replies", f"reply.{actor.name}.#"),
        (f"{actor.name}_commands", f"command.{actor.name}.#"),
    }
    assert bindings_of(node, actor) == expected
    before = await node_client.send_command(actor.name, "status", time_limit=5)
    assert before.status.did_succeed
    await stop_app(node, actor)
    back = await start_app(node)
    answered = await status_after_restart(node_client, actor, back)
    print(f"idle restart: status answered {answered:.2f} s after start_app")
    assert answered < ANSWER_WITHIN
    # Queues, consumers and bindings are back, our reply.<name>.# one included
    # and CLU's reply.# still left out.
    assert bindings_of(node, actor) == expected
    assert len(actor.outbox.outages) == 1
    assert len(actor.outbox) == 0


@pytest.mark.parametrize("back_at", ["mid_exposure", "after_write"])
async def test_restart_mid_exposure_keeps_the_frame_and_its_replies(
    node: RabbitNode,
    node_actor: CameraActor,
    node_client: AMQPClient,
    tmp_path,
    back_at: str,
):
    """``expose 3``: the broker goes at 1 s and is back at 2 s, or only once the
    file was written (so ``filename`` and ``:`` are produced while it is away).
    """
    actor, client = node_actor, node_client
    sim1 = camera(actor, "sim1")
    log = ReplyLog(actor.name)
    client.add_reply_callback(log)
    command = await client.send_command(
        actor.name, "expose sim1 3", time_limit=40, await_command=False
    )

    def integrated(seconds: float):
        return lambda: (
            sim1.progress.phase.value == "integrating"
            and sim1.progress.elapsed >= seconds
        )

    await wait_for(integrated(1.0), timeout=10)
    down = time.monotonic()
    await stop_app(node, actor)
    assert sim1.progress.phase.value == "integrating"  # the outage is mid-exposure
    if back_at == "mid_exposure":
        await wait_for(integrated(2.0), timeout=10)
        assert sim1.progress.phase.value == "integrating"
    else:
        await wait_for(lambda: len(fits_files(tmp_path, "sim1")) == 1, timeout=20)
        await wait_for(lambda: "sim1" not in actor.sequences, timeout=10)
        assert not command.done()  # its replies wait in the outbox
        assert len(actor.outbox) > 0
    back = await start_app(node)

    await asyncio.wait_for(command, 40)
    assert command.status.did_succeed, (codes(command), command.replies[-1].message)
    assert codes(command)[-1] == ":"
    [written] = keywords(command, "filename")
    arrival = [t for t, value in log.values("filename")]
    assert len(arrival) == 1 and arrival[0] > down
    print(f"{back_at}: filename received {arrival[0] - back:.2f} s after start_app")

    files = fits_files(tmp_path, "sim1")
    assert [str(path) for path in files] == [written["path"]]  # no frame lost
    with fits.open(written["path"], checksum=True) as hdul:
        hdu = next(h for h in hdul if h.data is not None)
        assert hdu.data.shape == (48, 64)
        assert hdu.header["DATASUM"] == written["datasum"]
        assert hdu.header["CHECKSUM"] == written["checksum"]
    assert not written["spooled"]
    assert len(actor.outbox.outages) == 1
    await wait_for(lambda: len(actor.outbox) == 0, timeout=5)


async def test_client_gets_a_reply_a_timeout_or_an_error_never_silence(
    node: RabbitNode, node_actor: CameraActor, tmp_path
):
    """A commander that is not back in time gets CLU's time-limit timeout.

    This client reconnects only after 30 s, so its replies queue is still gone
    when the actor publishes the end of the exposure; the actor keeps those
    replies ``hold_time`` seconds, then drops them (and says so). A command sent
    while the broker is away fails at once.
    """
    actor = node_actor
    actor.outbox.hold_time = 1.0
    url = f"amqp://guest:guest@{node.host}:{node.port}/%2F?reconnect_interval=30"
    client = AMQPClient(url=url)
    await client.start()
    try:
        command = await client.send_command(
            actor.name, "expose sim1 2", time_limit=8, await_command=False
        )
        sent = time.monotonic()
        await wait_for(lambda: codes(command) == [">"], timeout=5)
        await stop_app(node, actor)
        assert camera(actor, "sim1").progress.phase.value == "integrating"

        started = time.monotonic()
        with pytest.raises(RuntimeError, match="closed"):  # not silence: an error
            await asyncio.wait_for(client.send_command(actor.name, "status"), 5)
        assert time.monotonic() - started < 1.0

        await wait_for(lambda: len(fits_files(tmp_path, "sim1")) == 1, timeout=10)
        await start_app(node)
        await asyncio.wait_for(command, 10)
        waited = time.monotonic() - sent
        assert command.status == CommandStatus.TIMEDOUT
        assert 7.5 < waited < 10.0, waited
        assert codes(command) == [">"]
        await wait_for(lambda: actor.outbox.expired >= 2, timeout=5)  # filename, :
        assert len(actor.outbox) == 0
    finally:
        await client.stop()
