"""Broker credentials never appear in logs or replies.

A RabbitMQ user with a distinctive password is created for the module on the
local broker (and deleted after). Actors log in with it from the
configuration's ``user``/``password``, from a URL, and from the environment,
used as a library (no launcher, so none of its logging set-up). Every log
record of every logger, the actor's log file and every reply to a set of
commands must be free of the password.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from actor_fixtures import BROKER, actor_config, start_actor
from actor_test_helpers import ReplyLog, ok
from clu import AMQPClient

from actor.cli_secrets import RedactingFilter, hide_secrets
from actor.config import apply_env, validate_config

#: Commands whose replies must not hold the password (config-related included).
COMMANDS = [
    "status",
    "version",
    "ping",
    "list",
    "capabilities",
    "get_schema",
    "help",
    "keyword status",
    "get-command-model expose",
    "set-default sim1",
    "reconnect sim1",
    "expose sim1 0.01",
    "expose nocam 1",
    "frobnicate",
]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def broker_user() -> Iterator[tuple[str, str]]:
    """A broker user with a distinctive password, deleted afterwards."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create a broker user")
    tag = uuid.uuid4().hex[:10]
    user, password = f"camtest_{tag}", f"Pw{tag}Xq7"
    try:
        rabbitmqctl("add_user", user, password)
    except (subprocess.CalledProcessError, OSError) as err:
        pytest.skip(f"cannot add a broker user with rabbitmqctl: {err}")
    try:
        rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        yield user, password
    finally:
        rabbitmqctl("delete_user", user)


class Everything(logging.Handler):
    """Formats every record of every logger, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[Everything]:
    root = logging.getLogger()
    handler, level = Everything(), root.level
    root.addHandler(handler)
    root.setLevel(1)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def with_user(tmp_path: Path, how: str, user: str, password: str) -> dict:
    """An actor config logging in as ``user``, given the way ``how``."""
    config = actor_config(tmp_path)
    config["actor"]["log_dir"] = str(tmp_path / "logs")
    for key in ("user", "password"):
        del config["actor"][key]
    if how == "fields":
        config["actor"].update(user=user, password=password)
    elif how == "url":
        config["actor"]["url"] = f"amqp://{user}:{password}@127.0.0.1:5672/"
    else:
        env = {"CAMACTOR_BROKER_USER": user, "CAMACTOR_BROKER_PASSWORD": password}
        config = apply_env(config, env)
    return validate_config(config)


@pytest.mark.parametrize("how", ["fields", "url", "environment"])
async def test_password_never_logged_nor_replied(
    tmp_path, broker_user, all_logs, capfd, how
):
    user, password = broker_user
    config = with_user(tmp_path, how, user, password)
    client = AMQPClient(**BROKER)  # the commander logs in as guest
    await client.start()
    replies = ReplyLog(config["actor"]["name"])
    client.add_reply_callback(replies)
    actor = await start_actor(config)
    try:
        assert actor.connection.connection.url.user == user  # really logged in
        for text in COMMANDS:
            await client.send_command(actor.name, text, time_limit=10)
        await ok(client, actor, "status")
        shown = [repr(actor), str(actor)]
    finally:
        await actor.stop()
        await client.stop()
    assert len(replies.replies) > len(COMMANDS)
    assert any(user in line for line in all_logs.lines)  # the URL was logged...
    texts = {
        "log records": "\n".join(all_logs.lines),
        "log files": "\n".join(
            p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*")
        ),
        "replies": "\n".join(json.dumps(body) for _, _, body in replies.replies),
        "repr": "\n".join(shown),
        "stdout/stderr": "\n".join(capfd.readouterr()),
    }
    assert texts["log files"], "the actor wrote no log file"
    for where, text in texts.items():
        assert password not in text, f"the password is in the {where}"
    assert f"{user}:***@" in texts["log records"]  # ...with the password hidden


def test_hide_secrets_cleans_messages_and_tracebacks():
    logger = logging.getLogger(f"camtest.secrets.{uuid.uuid4().hex}")
    logger.propagate = False
    handler = Everything()
    logger.addHandler(handler)
    hide_secrets(logger)
    hide_secrets(logger)  # idempotent
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    logger.warning("bound to %s", "amqps://me:Sekr1t@host:5671/")
    try:
        raise ConnectionError("cannot reach amqp://me:Sekr1t@host/")
    except ConnectionError:
        logger.exception("failed")
    child = logger.getChild("child")  # reaches the handler, not the filter
    child.error("amqp://me:Sekr1t@host/ from a child logger")
    text = "\n".join(handler.lines)
    assert "Sekr1t" not in text
    assert text.count("me:***@host") >= 3  # message, exception, child
