"""Actor benchmarks P4-P6, each against a floor measured in the same run.

P4  ``expose 0`` with write over RabbitMQ, frames/s ÷ the same exposures
    through camera_core directly (target ≥ 0.8), quick look off as the direct
    path has none; ``P4q`` is the same with the default quick look on.
P5  sequential ``status`` round trip, median ÷ a bare aio-pika request/reply
    median on the same broker (target ≤ 1.5).
P6  N concurrent ``status`` commands, throughput ÷ the same bare aio-pika
    floor with N concurrent requests (target ≥ 0.8).

Usage: python benchmarks/bench_actor.py [--size 2048] [--frames 20]
       [--requests 200] [--concurrent 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from clu import AMQPClient
from common import emit, fast_simulator, median, save

from actor.actor import CameraActor
from actor.config import validate_config

URL = "amqp://guest:guest@127.0.0.1:5672/"


def make_config(
    data_dir: Path, size: int, cameras: int = 1, quicklook: bool = False
) -> dict[str, Any]:
    """An actor with fast simulated cameras; no quick look unless asked."""
    return validate_config(
        {
            "actor": {
                "name": f"bench_{uuid.uuid4().hex[:8]}",
                "quicklook": {"enabled": quicklook},
                "data_dir": str(data_dir),
                "image_dir": "{camera.name}",
                "log_dir": None,
                "poll_interval": 0.2,
            },
            "simulator": fast_simulator(size),
            "cameras": {
                f"sim{i}": {"uid": f"BENCH-{i}", "spool_dir": str(data_dir / "spool")}
                for i in range(1, cameras + 1)
            },
        }
    )


async def started_actor(config: dict[str, Any]) -> CameraActor:
    actor = CameraActor.from_config(config)
    await actor.start()
    deadline = time.monotonic() + 30
    while not (
        actor.camera_system.cameras
        and all(c.connected for c in actor.camera_system.cameras)
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("cameras did not connect")
        await asyncio.sleep(0.05)
    return actor


class BareEcho:
    """A bare aio-pika request/reply pair on the same broker: the floor."""

    async def start(self) -> BareEcho:
        self.connection = await aio_pika.connect(URL)
        channel = await self.connection.channel()
        self.exchange = await channel.declare_exchange(
            f"bench_{uuid.uuid4().hex[:6]}",
            aio_pika.ExchangeType.TOPIC,
            auto_delete=True,
        )
        requests = await channel.declare_queue(exclusive=True)
        await requests.bind(self.exchange, "request")
        replies = await channel.declare_queue(exclusive=True)
        await replies.bind(self.exchange, "reply")
        self.pending: dict[str, asyncio.Future] = {}

        async def serve(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                await self.exchange.publish(
                    aio_pika.Message(
                        b'{"text": "ok"}', correlation_id=message.correlation_id
                    ),
                    "reply",
                )

        async def receive(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                future = self.pending.pop(message.correlation_id, None)
                if future is not None:
                    future.set_result(message.body)

        await requests.consume(serve)
        await replies.consume(receive)
        return self

    async def request(self) -> None:
        key = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        await self.exchange.publish(
            aio_pika.Message(b'{"command_string": "status"}', correlation_id=key),
            "request",
        )
        await asyncio.wait_for(future, 10)

    async def stop(self) -> None:
        await self.connection.close()


class RawCommander:
    """Sends actor commands with bare aio-pika, as lean as the floor's client.

    It publishes CLU's wire format (``command.<actor>`` with ``command_id`` and
    ``commander_id`` headers) and waits for the terminal reply on its own queue,
    so the measurement is the actor's cost, not a client library's.
    """

    async def start(self, actor: str) -> RawCommander:
        self.actor = actor
        self.commander = f"bench_client_{uuid.uuid4().hex[:6]}"
        self.connection = await aio_pika.connect(URL)
        channel = await self.connection.channel()
        self.exchange = await channel.declare_exchange(
            "sdss_exchange", aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        replies = await channel.declare_queue(exclusive=True)
        await replies.bind(self.exchange, f"reply.{self.commander}")
        self.pending: dict[str, asyncio.Future] = {}

        async def receive(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                headers = message.headers or {}
                if headers.get("message_code") in (":", "f", "!"):
                    future = self.pending.pop(str(headers.get("command_id")), None)
                    if future is not None:
                        future.set_result(headers["message_code"])

        await replies.consume(receive)
        return self

    async def send(self, command_string: str) -> None:
        command_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.pending[command_id] = future
        body = json.dumps({"command_string": command_string}).encode()
        await self.exchange.publish(
            aio_pika.Message(
                body,
                headers={"command_id": command_id, "commander_id": self.commander},
            ),
            f"command.{self.actor}",
        )
        if await asyncio.wait_for(future, 10) != ":":
            raise RuntimeError(f"{command_string!r} failed")

    async def stop(self) -> None:
        await self.connection.close()


async def round_trips(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return times


async def throughput(call, n: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(call() for _ in range(n)))
    return n / (time.perf_counter() - start)


async def bench_p5_p6(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    actor = await started_actor(make_config(tmp / "p5", 64, cameras=1))
    commander = await RawCommander().start(actor.name)
    echo = await BareEcho().start()

    async def status() -> None:
        await commander.send("status")

    rows = []
    try:
        for run in range(args.runs):
            bare = median(await round_trips(echo.request, args.requests))
            ours = median(await round_trips(status, args.requests))
            rows.append(
                {
                    "id": "P5",
                    "run": run,
                    "status_ms": ours * 1e3,
                    "floor_ms": bare * 1e3,
                    "ratio": ours / bare,
                }
            )
            emit(rows[-1])
            bare_tp = await throughput(echo.request, args.concurrent)
            ours_tp = await throughput(status, args.concurrent)
            rows.append(
                {
                    "id": "P6",
                    "run": run,
                    "status_per_s": ours_tp,
                    "floor_per_s": bare_tp,
                    "ratio": ours_tp / bare_tp,
                }
            )
            emit(rows[-1])
    finally:
        await echo.stop()
        await commander.stop()
        await actor.stop()
    return rows


async def bench_p4(
    args: argparse.Namespace, tmp: Path, quicklook: bool = False
) -> list[dict[str, Any]]:
    """P4: the same exposures directly and through the actor.

    Like for like, the actor's quick look (frame_stats and a PNG, which the
    direct path does not make) is off. With ``quicklook`` it is on, as in the
    default configuration; that row is ``P4q``, for information.
    """
    actor = await started_actor(
        make_config(tmp / f"p4{quicklook}", args.size, quicklook=quicklook)
    )
    client = await AMQPClient(url=URL).start()
    camera = actor.camera_system.cameras[0]
    rows = []
    try:
        for run in range(args.runs):
            start = time.perf_counter()
            for _ in range(args.frames):
                await camera.expose(0.0, write=True)
            direct = args.frames / (time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(args.frames):
                command = await client.send_command(
                    actor.name, "expose 0", time_limit=60
                )
                if not command.status.did_succeed:
                    raise RuntimeError(f"expose failed: {command.replies[-1].message}")
            over_actor = args.frames / (time.perf_counter() - start)
            rows.append(
                {
                    "id": "P4q" if quicklook else "P4",
                    "run": run,
                    "actor_fps": over_actor,
                    "floor_fps": direct,
                    "ratio": over_actor / direct,
                }
            )
            emit(rows[-1])
    finally:
        await client.stop()
        await actor.stop()
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    ids = sorted({row["id"] for row in rows})
    return {i: median([r["ratio"] for r in rows if r["id"] == i]) for i in ids}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        rows = await bench_p5_p6(args, Path(tmp))
        rows += await bench_p4(args, Path(tmp))
        rows += await bench_p4(args, Path(tmp), quicklook=True)
    summary = summarise(rows)
    emit({"summary": summary})
    save("actor", [*rows, {"id": "summary", **summary}], vars(args))


if __name__ == "__main__":
    asyncio.run(main())
