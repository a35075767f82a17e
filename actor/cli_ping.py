"""``camactor ping``: whether the actor answers over the broker.

The container health check runs it (see the ``Dockerfile``). It connects to
the broker of the configuration, sends CLU's ``ping`` to the actor named there
and exits 0 if the actor answers within ``--timeout`` seconds, connecting
included; otherwise it prints why and exits 1.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import click

from .cli_client import ActorClientError, actor_client, command_error
from .daemon import CliState, broker_address

__all__ = ["PingError", "ping_actor", "ping_command"]


class PingError(Exception):
    """The actor did not answer; the message says why and what to check."""


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop."""
    return text.rstrip(". ") + "."


async def ping_actor(config: dict[str, Any], timeout: float) -> float:
    """Pings the actor of a validated configuration over its broker.

    Parameters
    ----------
    config
        The validated configuration (broker settings and ``actor.name``).
    timeout
        Seconds allowed for connecting to the broker and getting the answer.

    Returns
    -------
    elapsed
        Seconds from the start until the actor's answer.

    Raises
    ------
    PingError
        If the broker cannot be reached, the actor is not connected, refuses
        the ping or does not answer within ``timeout``.
    """
    section = config["actor"]
    name = section["name"]
    address = broker_address(config)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(timeout):
            async with actor_client(config, timeout) as client:
                command = await client.send_command(name, "ping", time_limit=timeout)
    except ActorClientError as err:
        raise PingError(str(err)) from None
    except TimeoutError:
        raise PingError(
            f"actor {name!r} did not answer a ping on {address} within "
            f"{timeout:g} s; it is stuck or the broker is slow (see its log)."
        ) from None
    if not command.status.did_succeed:
        raise PingError(
            f"actor {name!r} on {address} did not answer the ping: "
            f"{_sentence(command_error(command, timeout, raw=True))} Is the actor "
            "running, with this name and broker?"
        )
    return loop.time() - start


@click.command("ping")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds allowed for connecting and for the answer.",
)
@click.pass_obj
def ping_command(state: CliState, timeout: float) -> None:
    """Ping the actor over the broker: exit 0 if it answers, else 1."""
    name = state.config["actor"]["name"]
    if state.verbose == 0:  # the error below says it; aiormq would log it too
        logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    try:
        elapsed = asyncio.run(ping_actor(state.config, timeout))
    except PingError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{name} answered in {elapsed * 1000:.0f} ms.")
