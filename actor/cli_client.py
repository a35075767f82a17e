"""What the command-line tools share to talk to a running actor."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aio_pika.exceptions import AMQPError
from clu import AMQPClient
from sdsstools import get_logger

from .cli_secrets import redact_text
from .config import broker_kwargs
from .daemon import broker_address

__all__ = ["ActorClientError", "actor_client", "command_error"]

#: Seconds allowed to close a client's connection.
CLOSE_TIMEOUT = 2.0


class ActorClientError(Exception):
    """The broker or the actor could not be reached; the message says why."""


@contextlib.asynccontextmanager
async def actor_client(
    config: dict[str, Any], timeout: float = 10.0
) -> AsyncIterator[AMQPClient]:
    """A started `clu.AMQPClient` on the broker of a validated configuration.

    Parameters
    ----------
    config
        The validated configuration.
    timeout
        Seconds allowed to connect.

    Raises
    ------
    ActorClientError
        If the broker cannot be reached in time.
    """
    name = f"camactor_cli_{uuid.uuid4().hex[:8]}"
    log = get_logger(f"clu:{name}", capture_exceptions=False)
    log.propagate = False  # its own handler shows warnings; no debug chatter
    client = AMQPClient(name=name, log=log, **broker_kwargs(config["actor"]))
    try:
        async with asyncio.timeout(timeout):
            await client.start()
    except (TimeoutError, OSError, AMQPError) as err:
        reason = redact_text(str(err)) or type(err).__name__
        raise ActorClientError(
            f"cannot reach the broker at {broker_address(config)}: "
            f"{reason.rstrip('. ')}. Check that RabbitMQ runs there and the "
            "broker settings (CAMACTOR_BROKER_*)."
        ) from None
    try:
        yield client
    finally:
        with contextlib.suppress(TimeoutError, OSError, AMQPError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await client.stop()


def command_error(command: Any, timeout: float | None = None, raw: bool = False) -> str:
    """Why a command failed, saying what to do where it can.

    Parameters
    ----------
    command
        The finished `clu.Command` sent by a client.
    timeout
        Its time limit in seconds, for the message when it ran out.
    raw
        Give the actor's (or CLU's) error as it is, without advice.
    """
    actor = command.consumer_id
    if command.status.name == "TIMED_OUT":
        limit = "" if timeout is None else f" in {timeout:g} s"
        return (
            f"no answer from actor {actor}{limit}; is it running? "
            "('camactor actor status')"
        )
    errors = [
        reply.message["error"] for reply in command.replies if "error" in reply.message
    ]
    if not errors:
        return f"the command ended {command.status.name}"
    error = errors[-1]
    text = str(error.get("error", error) if isinstance(error, dict) else error)
    if not raw and text.startswith("Failed routing message"):  # no such queue
        return (
            f"actor {actor} is not connected to the broker; start it with "
            "'camactor actor start' or check actor.name in the config."
        )
    return text
