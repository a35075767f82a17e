"""What CLU's ``reply.#`` bindings cost with several actors on one broker.

CLU binds every actor's and client's replies queue to ``reply.#``, so each one
receives every reply on the bus. camactor's actor binds its queue to its own
replies only (``reply.<name>.#``). This script measures both with a camera
actor answering ``status`` to a bare commander while ``--bystanders`` other
actors share the broker (and this process, as on one host):

- ``clu``: stock CLU actors, each receiving and parsing every reply;
- ``narrowed``: the same actors with camactor's binding.

For each, the reply messages each bystander received and the ``status``
throughput are recorded; ``cost`` is the narrowed throughput ÷ the CLU one
(> 1: the stock bindings slow the actor down).

Usage: python benchmarks/bench_bindings.py [--bystanders 4] [--requests 300]
       [--concurrent 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench_actor import URL, RawCommander, make_config, started_actor
from clu import AMQPActor
from common import emit, median, save


async def bystander(narrowed: bool) -> tuple[AMQPActor, list[int]]:
    """A stock CLU actor that counts the replies its queue receives."""
    actor = AMQPActor(name=f"bystander_{uuid.uuid4().hex[:8]}", url=URL)
    received = [0]
    handle = actor.handle_reply

    async def counting(message: Any) -> Any:
        received[0] += 1
        return await handle(message)

    actor.handle_reply = counting  # before start: the consumer takes this one
    await actor.start()
    if narrowed:
        exchange = actor.connection.exchange
        await actor.replies_queue.bind(exchange, f"reply.{actor.name}.#")
        await actor.replies_queue.unbind(exchange, "reply.#")
    return actor, received


async def measure(args: argparse.Namespace, tmp: Path, narrowed: bool) -> dict:
    camera_actor = await started_actor(make_config(tmp / uuid.uuid4().hex, 64))
    commander = await RawCommander().start(camera_actor.name)
    others = [await bystander(narrowed) for _ in range(args.bystanders)]
    try:
        await asyncio.gather(*(commander.send("status") for _ in range(20)))
        for _, received in others:
            received[0] = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(0, args.requests, args.concurrent):
            await asyncio.gather(
                *(commander.send("status") for _ in range(args.concurrent))
            )
        rate = args.requests / (loop.time() - start)
        per_bystander = median([received[0] for _, received in others])
    finally:
        for actor, _ in others:
            await actor.stop()
        await commander.stop()
        await camera_actor.stop()
    return {"status_per_s": rate, "replies_per_bystander": per_bystander}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bystanders", type=int, default=4)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        for run in range(args.runs):
            clu = await measure(args, Path(tmp), narrowed=False)
            ours = await measure(args, Path(tmp), narrowed=True)
            rows.append(
                {
                    "id": "bindings",
                    "run": run,
                    "clu_status_per_s": clu["status_per_s"],
                    "narrowed_status_per_s": ours["status_per_s"],
                    "clu_replies_per_bystander": clu["replies_per_bystander"],
                    "narrowed_replies_per_bystander": ours["replies_per_bystander"],
                    "ratio": ours["status_per_s"] / clu["status_per_s"],
                }
            )
            emit(rows[-1])
    summary = {
        "id": "summary",
        "bindings_cost": median([r["ratio"] for r in rows]),
        "clu_replies_per_bystander": median(
            [r["clu_replies_per_bystander"] for r in rows]
        ),
        "narrowed_replies_per_bystander": median(
            [r["narrowed_replies_per_bystander"] for r in rows]
        ),
    }
    emit(summary)
    save("bindings", [*rows, summary], vars(args))


if __name__ == "__main__":
    asyncio.run(main())
