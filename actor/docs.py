"""Generates the README reference sections from the parser and the schema.

Run ``python -m actor.docs --write README.md`` after changing a command, a
keyword or a configuration key; a test fails while the README is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from camera_core.simfaults import FAULTS
from camera_core.simulator import SIMULATOR_DEFAULTS, SimulatedCamera

from .actor import default_schema_path
from .commands import build_parser
from .config import CONFIG_SCHEMA

__all__ = ["SECTIONS", "render_commands", "render_keywords", "update_readme"]


def _usage(name: str, command: click.Command) -> str:
    ctx = click.Context(command, info_name=name)
    pieces = [name]
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            pieces.append(
                param.make_metavar(ctx) if param.metavar is None else param.metavar
            )
    help_option = command.get_help_option(ctx)
    if any(
        isinstance(p, click.Option) and p is not help_option
        for p in command.get_params(ctx)
    ):
        pieces.append("[OPTIONS]")
    return " ".join(pieces)


def render_commands() -> str:
    """A Markdown table of every command of the simulator actor."""
    parser = build_parser(SimulatedCamera)
    lines = ["| command | what it does | options |", "|---|---|---|"]
    for name in sorted(parser.commands):
        command = parser.commands[name]
        if getattr(command, "internal", False):
            continue
        ctx = click.Context(command, info_name=name)
        summary = (command.help or "").strip().splitlines()[0] if command.help else ""
        options = []
        help_option = command.get_help_option(ctx)
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and param is not help_option:
                options.append("/".join(f"`{opt}`" for opt in param.opts))
        usage = _usage(name, command).replace("|", "\\|")
        lines.append(f"| `{usage}` | {summary} | {', '.join(options)} |")
    return "\n".join(lines)


def _describe(spec: dict[str, Any]) -> str:
    if "properties" in spec:
        return ", ".join(f"`{key}`" for key in spec["properties"])
    if "items" in spec and isinstance(spec["items"], dict):
        return "list of " + (_describe(spec["items"]) or spec["items"].get("type", ""))
    if "oneOf" in spec:
        return " or ".join(
            _describe(option) or str(option.get("type")) for option in spec["oneOf"]
        )
    return ""


def render_keywords() -> str:
    """A Markdown table of every keyword in the actor schema."""
    schema = json.loads(default_schema_path().read_text())
    lines = ["| keyword | description | fields |", "|---|---|---|"]
    for name, spec in schema["properties"].items():
        description = spec.get("description", "")
        lines.append(f"| `{name}` | {description} | {_describe(spec)} |")
    return "\n".join(lines)


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return "`" + json.dumps(value, default=dict) + "`"


def render_actor_config() -> str:
    """A Markdown table of the ``actor:`` configuration keys."""
    keys = CONFIG_SCHEMA["properties"]["actor"]["properties"]
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for name, spec in keys.items():
        lines.append(
            f"| `{name}` | {_literal(spec['default'])} | {spec['description']} |"
        )
    return "\n".join(lines)


def render_simulator_config() -> str:
    """Markdown tables of the ``simulator:`` keys and the injectable faults."""
    lines = ["| key | default |", "|---|---|"]
    for name, value in SIMULATOR_DEFAULTS.items():
        lines.append(f"| `{name}` | {_literal(value)} |")
    lines += ["", "| fault | parameters (defaults) |", "|---|---|"]
    for name, params in FAULTS.items():
        described = ", ".join(f"`{k}`={_literal(v)}" for k, v in params.items())
        lines.append(f"| `{name}` | {described} |")
    return "\n".join(lines)


#: README sections, keyed by their marker name, and the function that makes each.
SECTIONS = {
    "COMMANDS": render_commands,
    "KEYWORDS": render_keywords,
    "ACTOR_CONFIG": render_actor_config,
    "SIMULATOR_CONFIG": render_simulator_config,
}


def update_readme(text: str) -> str:
    """Returns ``text`` with every generated section replaced."""
    for name, render in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN {name} -->\n)(?:.*?\n)?(<!-- END {name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise ValueError(f"README has no <!-- BEGIN {name} --> section.")
        text = pattern.sub(
            lambda m, r=render: m.group(1) + r() + "\n" + m.group(2), text
        )
    return text


def main(argv: list[str] | None = None) -> int:
    """Checks or rewrites the generated README sections."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("readme", type=Path, nargs="?", default=Path("README.md"))
    parser.add_argument("--write", action="store_true", help="Rewrite the file.")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    updated = update_readme(text)
    if args.write:
        args.readme.write_text(updated)
        return 0
    if updated != text:
        print(
            f"{args.readme} is stale: run python -m actor.docs --write", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
