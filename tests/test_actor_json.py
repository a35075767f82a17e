"""BaseCameraActor combines with CLU's JSONActor (TCP) as well as AMQPActor."""

from __future__ import annotations

import asyncio
import json
import socket

from actor_fixtures import actor_config

from actor.actor import JSONCameraActor, build_camera_system


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_json_actor_answers_status_over_tcp(tmp_path):
    system = build_camera_system(actor_config(tmp_path))
    port = free_port()
    actor = JSONCameraActor(system, name="jsoncam", host="127.0.0.1", port=port)
    await actor.start()
    await system.add_camera(name="sim1")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"7 status sim1\n")
        await writer.drain()
        replies = []  # broadcasts (command_id 0) may interleave; keep ours
        async with asyncio.timeout(10):
            while not replies or replies[-1]["header"]["message_code"] not in ":f":
                reply = json.loads(await reader.readline())
                if reply["header"]["command_id"] == 7:
                    replies.append(reply)
    finally:
        writer.close()
        await system.disconnect()
        await actor.stop()
    assert replies[-1]["header"]["message_code"] == ":"
    statuses = [r["data"]["status"] for r in replies if "status" in r["data"]]
    assert statuses == [statuses[0]] and statuses[0]["camera"] == "sim1"
