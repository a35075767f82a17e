"""``help``: CLU's help command, without its crash on extra words.

CLU's ``help`` walks its words as nested command groups, so ``help expose 1``
asked a command for its subcommands and failed with an uncaught
``AttributeError``. This one says which word is not a command instead.
"""

from __future__ import annotations

import re

import click
from clu import Command
from clu.parsers.click import CluCommand


@click.command(cls=CluCommand, name="help")
@click.argument("PARSER-COMMAND", type=str, required=False)
@click.pass_context
def help_(ctx: click.Context, *args: Command, parser_command: str | None):
    """Shows the help."""
    command = args[0]
    # CLU's parser passes the words after 'help' as one quoted string.
    words = (parser_command or "").strip('"').split()
    name = command.actor.name
    root = ctx.find_root()
    target: click.Command = root.command
    for index, word in enumerate(words):
        if not isinstance(target, click.Group):
            used = " ".join(words[:index])
            return command.fail(
                error=f"command {used} has no subcommand {word!r}; send "
                f"'help {used}' for its usage."
            )
        found = target.commands.get(word)
        if found is None:
            return command.fail(error=f"command {word} not found.")
        name += f" {word}"
        target = found
    lines = target.get_help(root) if words else root.get_help()
    message = []
    for line in lines.splitlines():
        match = re.match(r"^Usage: ([A-Za-z-_]+)", line)  # the parser's name
        message.append(line.replace(match.groups()[0], name) if match else line)
    return command.finish(help=message, write_to_log=False)
