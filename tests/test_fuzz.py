"""1000 random and mutated commands against one real actor over RabbitMQ.

The command strings come from hypothesis strategies, drawn deterministically
(``derandomize``), so every run sends the same 1000 strings: random text,
valid commands with tokens inserted, deleted or replaced by huge numbers,
NaN and infinities, unicode, quotes, shell syntax and injected options
(``--filename ../../x``). They are sent in concurrent batches.

Every command must end with ``:`` or ``f`` within a bound. Commands that are
legitimately long (``expose --count 10**20``, a slow cooling ramp) are ended
the way a user would, with ``abort``, ``finish`` and a new set point, and must
then end too. No reply may fail the schema, no error may come from an
uncaught exception (in replies or as a traceback in the log), nothing may be
written outside the data directory, and the actor answers ``status`` after.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

import pytest
from actor_fixtures import BROKER, actor_config, start_actor
from actor_test_helpers import ReplyLog, errors, fails, ok
from clu import AMQPClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_actor_schema import check_replies

#: Commands sent in all.
EXAMPLES = 1000
#: Commands sent at once.
BATCH = 10
#: Seconds a batch may take before its long commands are ended by hand.
BATCH_BOUND = 6.0
#: Seconds the long commands then have to end.
CLEANUP_BOUND = 6.0

VALID = [
    "ping",
    "version",
    "status",
    "status sim1",
    "list",
    "list --available",
    "capabilities sim2",
    "expose sim1 0.1 --bias",
    "expose 0.01",
    "expose sim1 sim2 0.01 -c 2",
    "expose sim1 0.01 -s 2 -n 3",
    "expose sim2 0.01 --flat -f flat.fits",
    "expose sim1 0.02 --dark --timeout 1",
    "abort",
    "stop sim1",
    "finish sim2",
    "reconnect sim2 --timeout 2",
    "temperature",
    "temperature sim1 -5 --ramp 600",
    "shutter sim1 --open",
    "shutter --close",
    "binning sim1 2",
    "binning",
    "area sim1 1 32 1 24",
    "area --reset",
    "gain --gain 3 --offset 10",
    "gain sim2 --readout-mode fast",
    "set-default sim1",
    "set-default --force sim1 sim2",
    "help",
    "help expose",
    "keyword status",
    "get_schema",
    "get-command-model expose",
]

TOKENS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e-320", "0",
    "-0", "-1", "99999999999999999999999999", "0x10", "1_000", "٣", "１", "½",
    "'", '"', "\\", "''", '""', "--", "-", "--help", "-h", "--filename",
    "--filename ../../x", "-f ../../../etc/x", "-f /tmp/camactor-fuzz.fits",
    "-f ~/camactor-fuzz.fits",
    "-f ''", "--count", "--count 100000000000000000000", "-s 1000000", "-n -1",
    "--timeout", "--timeout 1e-300", "--ramp 1e-9", "--gain nan", "--offset 1e30",
    "--readout-mode ../x", "--exposure-id", "--exposure-id ../../x", "sim1",
    "sim2", "SIM-1", "nocam", "sim1 sim1", ";", "&&", "|", "$(touch pwned)",
    "`id`", "\x00", "\n", "\r", "\t", "\u202e", "\ufeff", "💥", "{camera.name}",
    "{__import__('os')}", "%s%n", "${HOME}", "*", "?", "[", "]", "{", "}", "=",
    "--object", "--bias", "--flat", "--dark", "--no-postprocess", "--reset",
    "--open", "--close", "--available", "--force", "abort", "expose", "status",
]  # fmt: skip

NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=0.05).map(lambda x: f"{x:.3f}"),
)
TOKEN = st.one_of(st.sampled_from(TOKENS), NUMBERS, st.text(max_size=12))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid command with up to 4 tokens inserted, deleted or replaced."""
    words = draw(st.sampled_from(VALID)).split()
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        where = draw(st.integers(min_value=0, max_value=len(words)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "append"]))
        if kind == "insert":
            words.insert(where, draw(TOKEN))
        elif kind == "append":
            words.append(draw(TOKEN))
        elif words and where < len(words):
            if kind == "delete" and len(words) > 1:
                del words[where]
            else:
                words[where] = draw(TOKEN)
    return " ".join(words)


COMMAND = st.one_of(
    st.sampled_from(VALID),
    mutated(),
    mutated(),
    st.text(max_size=80),
    st.builds(
        lambda verb, rest: f"{verb} {rest}",
        st.sampled_from(sorted({v.split()[0] for v in VALID})),
        st.text(max_size=40),
    ),
    st.lists(TOKEN, max_size=6).map(" ".join),
)


def command_strings() -> list[str]:
    """The `EXAMPLES` command strings, the same ones at every run."""
    drawn: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(COMMAND)
    def collect(text: str) -> None:
        drawn.append(text)

    collect()
    return drawn


class Crashes(logging.Handler):
    """Keeps every record at ERROR or above that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info or "Traceback" in text or record.levelno >= 50:
            self.records.append(f"{record.name} {record.levelname}: {text[:300]}")


@pytest.fixture
def crashes() -> Iterator[Crashes]:
    handler, root = Crashes(), logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def test_command_strings_are_deterministic():
    first = command_strings()
    assert len(first) == EXAMPLES
    assert first == command_strings()
    assert len(set(first)) > 0.8 * EXAMPLES
    assert any("--filename ../../x" in text for text in first)
    assert any("nan" in text.lower() for text in first)


async def run_batch(client, actor, batch: list[str]) -> list[tuple[str, float]]:
    """Sends a batch at once; returns the commands that needed ending by hand."""
    start = time.monotonic()
    commands = [
        await client.send_command(actor.name, text, await_command=False)
        for text in batch
    ]
    text_of = {id(c): text for c, text in zip(commands, batch, strict=True)}
    _, pending = await asyncio.wait(commands, timeout=BATCH_BOUND)
    ended = []
    if pending:
        for text in ("abort sim1 sim2", "finish sim1 sim2", "temperature sim1 sim2 20"):
            await client.send_command(actor.name, text, time_limit=CLEANUP_BOUND)
        _, still = await asyncio.wait(pending, timeout=CLEANUP_BOUND)
        hung = [text_of[id(c)] for c in still]
        assert not hung, f"no terminal reply even after abort/finish: {hung}"
        ended = [(text_of[id(c)], time.monotonic() - start) for c in pending]
    for command, text in zip(commands, batch, strict=True):
        codes = [r.message_code for r in command.replies]
        code = getattr(codes[-1], "value", codes[-1]) if codes else None
        assert code in (":", "f"), (text, codes)
    return ended


async def test_fuzz_the_actor(tmp_path, crashes):
    texts = command_strings()
    config = actor_config(tmp_path, time_factor=0.001)
    for entry in config["cameras"].values():
        entry["cooling_timeout"] = 5.0  # simulated seconds: 5 ms
        entry["exposure_timeout_margin"] = 2.0
    outside = tmp_path / "outside"
    outside.mkdir()
    client = AMQPClient(**BROKER)
    await client.start()
    log = ReplyLog(config["actor"]["name"])
    client.add_reply_callback(log)
    actor = await start_actor(config)
    start = time.monotonic()
    ended: list[tuple[str, float]] = []
    try:
        for first in range(0, len(texts), BATCH):
            ended += await run_batch(client, actor, texts[first : first + BATCH])
        elapsed = time.monotonic() - start
        await ok(client, actor, "status", time_limit=5)
        await ok(client, actor, "ping", time_limit=5)
    finally:
        await actor.stop()
        await client.stop()
    terminal = [code for _, code, _ in log.replies if code in ":f"]
    written = list((tmp_path / "data").rglob("*.fits*"))
    print(
        f"fuzz: {len(texts)} commands in {elapsed:.1f} s, {terminal.count(':')} "
        f"done, {terminal.count('f')} failed, {len(written)} images; ended by "
        f"hand: {ended}"
    )
    assert terminal.count(":") >= 60 and len(written) >= 5  # it did things too
    problems = check_replies(log.replies)
    assert not problems, "\n".join(problems[:20])
    uncaught = [
        body
        for _, _, body in log.replies
        if "uncaught error" in json.dumps(body) or "exception" in body
    ]
    assert not uncaught, uncaught[:5]
    assert not crashes.records, "\n".join(crashes.records[:10])
    assert list(outside.iterdir()) == []
    assert {p.name for p in tmp_path.iterdir()} <= {"data", "spool", "outside"}
    assert not list(tmp_path.rglob("*pwned*"))
    for escaped in ("/tmp/camactor-fuzz.fits", "~/camactor-fuzz.fits", "../etc/x"):
        assert not (tmp_path / escaped).expanduser().exists(), escaped
    assert len(ended) <= 20, ended  # only the legitimately long ones


# What the fuzz found, pinned down.


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-2855", "not an option ('-2855')"),
        ("--available", "not an option ('--available')"),
        ("--nope status", "not an option ('--nope')"),
        ("-x", "not an option ('-x')"),
    ],
)
async def test_options_before_the_command_get_an_f(actor, client, text, reason):
    """CLU built the click context outside its try: no reply at all, ever."""
    start = time.monotonic()
    command = await fails(client, actor, text, time_limit=5)
    assert time.monotonic() - start < 1.0
    assert reason in errors(command) and "Send 'help'" in errors(command)
    await ok(client, actor, "ping")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("help expose 1", "command expose has no subcommand '1'"),
        ("help version 0.022 x", "command version has no subcommand '0.022'"),
        ("help nocommand", "command nocommand not found."),
    ],
)
async def test_help_with_extra_words_fails_cleanly(actor, client, text, reason):
    """CLU's help crashed (AttributeError) on words after a command."""
    command = await fails(client, actor, text)
    assert reason in errors(command) and "uncaught" not in errors(command)
    command = await ok(client, actor, "help expose")
    assert any("--filename" in line for line in command.replies[-1].message["help"])


@pytest.mark.parametrize(
    "text",
    [
        "expose sim1 0.01 --timeout nan",
        "expose sim1 0.01 --timeout inf",
        "reconnect sim1 --timeout NaN",
        "temperature sim1 -5 --timeout nan",
        "temperature sim1 -5 --ramp inf",
        "gain sim1 --gain nan",
        "gain sim1 --gain -inf",
    ],
)
async def test_non_finite_option_values_are_refused(actor, client, text):
    """NaN passed click.FloatRange: ``--timeout nan`` never timed out."""
    start = time.monotonic()
    command = await fails(client, actor, text, time_limit=5)
    assert time.monotonic() - start < 1.0
    assert "is not a finite number" in errors(command)
    command = await ok(client, actor, "gain sim1")
    assert command.replies[-2].message["gain"]["gain"] == 1.5  # unchanged
