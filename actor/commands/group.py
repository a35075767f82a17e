"""The command group class of camera actors."""

from __future__ import annotations

import click
from clu.parsers.click import CluGroup

__all__ = ["CameraCommandGroup"]


class CameraCommandGroup(CluGroup):
    """CLU's command group without its per-command package-metadata lookup.

    `CluGroup.parse_args` asks `importlib.metadata` for click's version on every
    command (about 0.26 ms, a tenth of a ``status`` round trip) to choose
    between click's pre- and post-8.2 context attributes. camactor requires
    click ≥ 8.2, so the choice is made once, here.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parses the group's options and leaves the subcommand in the context."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            ctx.exit()
        rest = click.Command.parse_args(self, ctx, args)
        if self.chain:
            ctx._protected_args = rest
            ctx.args = []
        elif rest:
            ctx._protected_args, ctx.args = rest[:1], rest[1:]
        return ctx.args
