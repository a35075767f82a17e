"""Checks of incoming AMQP command messages, before CLU sees them.

CLU's `~clu.actor.AMQPActor` trusts its messages: a ``task`` header sends one
down a task path that never acknowledges it (and, with ``prefetch_count=1``,
no later command is ever delivered), a body that is not JSON raises, and any
header value becomes the ``command_id`` echoed in every reply. These functions
say what is wrong with a message so that `actor.actor.CameraActor` can refuse
it with an ``f`` reply, and acknowledge it exactly once whatever happens.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika

__all__ = ["MAX_ID_LENGTH", "ack_message", "check_body", "check_headers", "reply_ids"]

#: Longest ``command_id`` or ``commander_id`` string accepted, in characters.
MAX_ID_LENGTH = 256


def _id_error(name: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return (
            f"Command refused: the {name!r} header must be a string or an "
            f"integer, not {type(value).__name__}."
        )
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        return (
            f"Command refused: the {name!r} header is {len(value)} characters "
            f"long; use at most {MAX_ID_LENGTH}."
        )
    return None


def check_headers(headers: Mapping[str, Any]) -> str | None:
    """What is wrong with the headers of a command message, or `None`.

    Parameters
    ----------
    headers
        The AMQP headers of the message.

    Returns
    -------
    error
        The error of the ``f`` reply refusing the message; `None` if the
        headers are fine. A ``task`` header that CLU would follow (any true
        value) is refused: this actor runs no tasks. A ``command_id`` or
        ``commander_id`` must be a string or an integer of bounded length;
        either may be missing (CLU then uses `None`).
    """
    if headers.get("task", False):
        return (
            "Command refused: tasks are not supported by this actor (the "
            "message has a true 'task' header). Send the command without it."
        )
    for name in ("commander_id", "command_id"):
        value = headers.get(name)
        if value is not None and (error := _id_error(name, value)) is not None:
            return error
    return None


def reply_ids(headers: Mapping[str, Any]) -> tuple[str | int | None, str | int]:
    """``(commander_id, command_id)`` to refuse a message with.

    Values that `check_headers` would refuse are replaced (`None` and ``0``) so
    that the refusal itself can be published and routed.
    """
    commander_id = headers.get("commander_id")
    command_id = headers.get("command_id")
    if commander_id is not None and _id_error("commander_id", commander_id):
        commander_id = None
    if command_id is None or _id_error("command_id", command_id):
        command_id = 0
    return commander_id, command_id


def check_body(body: bytes, max_bytes: int) -> str | None:
    """What is wrong with the body of a command message, or `None`.

    Parameters
    ----------
    body
        The message body, which must be a JSON object with a
        ``command_string`` string.
    max_bytes
        Larger bodies are refused.
    """
    if len(body) > max_bytes:
        return f"Command refused: {len(body)} bytes is over the {max_bytes}-byte limit."
    try:
        payload = json.loads(body.decode())
    except (UnicodeDecodeError, ValueError):
        return "Command refused: the message body is not JSON."
    if not isinstance(payload, dict) or not isinstance(
        payload.get("command_string"), str
    ):
        return "Command refused: the body has no 'command_string' string."
    return None


async def ack_message(
    message: aio_pika.abc.AbstractIncomingMessage, log: logging.Logger | Any
) -> None:
    """Acknowledges a message unless that was done; never raises.

    If the channel is gone the broker delivers the message again once the
    connection is back, which is logged.
    """
    if message.processed:
        return
    try:
        await message.ack()
    except Exception as err:
        log.warning(f"Could not acknowledge a command message ({err!r}).")
