"""Sphinx directives that render the reference pages from the code.

Nothing here is a copy: the tables come from the functions that write the
README (`actor.docs.SECTIONS`), the command help from the click parser, the
keyword fields from ``schema/camactor.json`` and the configuration keys from
`actor.config.CONFIG_SCHEMA`.

- ``.. camactor-table:: COMMANDS`` renders one of `actor.docs.SECTIONS`.
- ``.. camactor-commands::`` gives each actor command a section with its help.
- ``.. camactor-keywords::`` gives each keyword a section with its fields.
- ``.. camactor-config:: SECTION`` tabulates one section of `CONFIG_SCHEMA`.
- ``.. camactor-cli::`` shows the help of the ``camactor`` launcher.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

import click
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

__all__ = ["markdown_tables", "setup"]


def markdown_tables(markdown: str) -> list[list[list[str]]]:
    """Splits the Markdown tables of `actor.docs` into rows of cells."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if not line.strip():
            if rows:
                tables.append(rows)
            rows = []
            continue
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        cells = [cell.strip().replace("\\|", "|") for cell in cells]
        if all(cell and set(cell) <= {"-", ":"} for cell in cells):
            continue  # the line under the header
        rows.append(cells)
    return tables


def _inline(text: str) -> list[nodes.Node]:
    """Text with Markdown code spans as docutils nodes."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced backquotes in {text!r}")
    return [
        nodes.literal(part, part) if index % 2 else nodes.Text(part)
        for index, part in enumerate(parts)
        if part
    ]


def _table(rows: list[list[str]]) -> nodes.table:
    width = len(rows[0])
    table = nodes.table(classes=["camactor-table"], align="left")
    group = nodes.tgroup(cols=width)
    table += group
    for _ in range(width):
        group += nodes.colspec(colwidth=1)
    for section, cells_of_rows in (
        (nodes.thead(), rows[:1]),
        (nodes.tbody(), rows[1:]),
    ):
        group += section
        for cells in cells_of_rows:
            if len(cells) != width:
                raise ValueError(f"row {cells} does not have {width} cells")
            row = nodes.row()
            for cell in cells:
                row += nodes.entry("", nodes.paragraph("", "", *_inline(cell)))
            section += row
    return table


class TableDirective(SphinxDirective):
    """Renders one of the generated README sections as tables."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from actor.docs import SECTIONS

        name = self.arguments[0]
        if name not in SECTIONS:
            raise self.error(f"unknown section {name!r}; use one of {list(SECTIONS)}")
        return [_table(rows) for rows in markdown_tables(SECTIONS[name]())]


class _RstDirective(SphinxDirective):
    """A directive that generates reStructuredText with section titles."""

    def lines(self) -> Iterator[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        source = self.get_source_info()[0]
        content = StringList()
        for line in self.lines():
            content.append(line, source)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, content, node)
        return node.children


def _title(text: str, underline: str = "-") -> list[str]:
    return [text, underline * len(text), ""]


def _literal_block(text: str) -> list[str]:
    return [".. code-block:: text", "", *textwrap.indent(text, "   ").splitlines(), ""]


def _help(command: click.Command, name: str, parent: Any = None) -> str:
    ctx = click.Context(command, info_name=name, parent=parent)
    return command.get_help(ctx)


class CommandsDirective(_RstDirective):
    """A section per actor command, with the command's click help."""

    def lines(self) -> Iterator[str]:
        from actor.commands import build_parser
        from camera_core.simulator import SimulatedCamera

        parser = build_parser(SimulatedCamera)
        for name in sorted(parser.commands):
            command = parser.commands[name]
            if getattr(command, "internal", False):
                continue
            yield from [f".. _command-{name}:", ""]
            yield from _title(name)
            yield from _literal_block(_help(command, name))


def _resolve(spec: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping:
    ref = spec.get("$ref")
    if ref is None:
        return spec
    resolved = definitions[ref.rsplit("/", 1)[-1]]
    return {**resolved, **{k: v for k, v in spec.items() if k != "$ref"}}


def _type(spec: Mapping[str, Any], definitions: Mapping[str, Any]) -> str:
    """A short description of a JSON Schema type, with Markdown code spans."""
    spec = _resolve(spec, definitions)
    if "enum" in spec:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "oneOf" in spec or "anyOf" in spec:
        options = spec.get("oneOf", spec.get("anyOf"))
        return " or ".join(_type(option, definitions) for option in options)
    kind = spec.get("type", "any")
    text = " or ".join(kind) if isinstance(kind, list | tuple) else str(kind)
    if "items" in spec and isinstance(spec["items"], Mapping):
        text += " of " + _type(spec["items"], definitions)
    return text


class KeywordsDirective(_RstDirective):
    """A section per keyword of the actor schema, with a table of its fields."""

    def lines(self) -> Iterator[str]:
        from actor.actor import default_schema_path

        schema = json.loads(default_schema_path().read_text())
        for name in schema["properties"]:
            yield from [f".. _keyword-{name}:", ""]
            yield from _title(name)
            yield from [f".. camactor-keyword-fields:: {name}", ""]
        self.env.note_dependency(str(default_schema_path()))


def _keyword_rows(spec: Mapping[str, Any], definitions: Mapping) -> list[list[str]]:
    spec = _resolve(spec, definitions)
    required = set(spec.get("required", ()))
    rows = [["field", "type", "description"]]
    for field, field_spec in spec["properties"].items():
        field_spec = _resolve(field_spec, definitions)
        mark = "" if field in required else " (optional)"
        rows.append(
            [f"`{field}`{mark}", _type(field_spec, definitions), spec_text(field_spec)]
        )
    return rows


def spec_text(spec: Mapping[str, Any]) -> str:
    """The description of a schema node, quoting stray backquotes safely."""
    text = str(spec.get("description", ""))
    return text if text.count("`") % 2 == 0 else text.replace("`", "'")


class KeywordFieldsDirective(SphinxDirective):
    """The description and the field table of one keyword."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from actor.actor import default_schema_path

        schema = json.loads(default_schema_path().read_text())
        definitions = schema.get("definitions", {})
        spec = schema["properties"][self.arguments[0]]
        paragraph = nodes.paragraph("", "", *_inline(spec_text(spec)))
        if "properties" not in _resolve(spec, definitions):
            kind = nodes.paragraph("", "Value: ", *_inline(_type(spec, definitions)))
            return [paragraph, kind]
        return [paragraph, _table(_keyword_rows(spec, definitions))]


class ConfigDirective(SphinxDirective):
    """A table of the keys of one section of the configuration schema."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from actor.config import CONFIG_SCHEMA

        section = self.arguments[0]
        spec = CONFIG_SCHEMA["properties"].get(section)
        if spec is None or "properties" not in spec:
            raise self.error(f"the configuration has no section {section!r} of keys")
        rows = [["key", "type", "default", "meaning"]]
        for key, key_spec in spec["properties"].items():
            default = key_spec.get("default")
            literal = json.dumps(
                list(default) if isinstance(default, tuple) else default
            )
            rows.append(
                [f"`{key}`", _type(key_spec, {}), f"`{literal}`", spec_text(key_spec)]
            )
        return [_table(rows)]


class CliDirective(_RstDirective):
    """The help of the ``camactor`` launcher and of each of its subcommands."""

    def lines(self) -> Iterator[str]:
        from actor.__main__ import camactor

        root = click.Context(camactor, info_name="camactor")
        yield from _literal_block(camactor.get_help(root))
        for name in camactor.list_commands(root):
            command = camactor.get_command(root, name)
            yield from [f".. _launcher-{name}:", ""]
            yield from _title(f"camactor {name}")
            yield from _literal_block(_help(command, name, root))
            if isinstance(command, click.Group):
                ctx = click.Context(command, info_name=name, parent=root)
                for sub in command.list_commands(ctx):
                    subcommand = command.get_command(ctx, sub)
                    yield from _title(f"camactor {name} {sub}", "~")
                    yield from _literal_block(_help(subcommand, sub, ctx))


def setup(app: Sphinx) -> dict[str, Any]:
    """Registers the directives."""
    app.add_directive("camactor-table", TableDirective)
    app.add_directive("camactor-commands", CommandsDirective)
    app.add_directive("camactor-keywords", KeywordsDirective)
    app.add_directive("camactor-keyword-fields", KeywordFieldsDirective)
    app.add_directive("camactor-config", ConfigDirective)
    app.add_directive("camactor-cli", CliDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
