"""The slash commands, made from the core's command table (`bot.core.commands.COMMANDS`): each
hands its name and options to `MemeService.handle_command`, which decides who may run it and
words the answer."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import discord
from discord import app_commands

from bot.core.commands import COMMANDS, Arg, CommandSpec

MAX_DESCRIPTION = 100  # Discord's limit for command and option descriptions


class CommandHandler(Protocol):
    async def on_command(self, interaction: discord.Interaction, name: str,
                         args: Sequence[str] = ()) -> None: ...


def _option(arg: Arg) -> inspect.Parameter:
    if arg.choices:
        # A fixed list Discord offers to pick from; left out, the core's default applies.
        annotation: Any = Literal[arg.choices] if arg.required else Literal[arg.choices] | None
        default: Any = inspect.Parameter.empty if arg.required else None
    else:
        annotation = str if arg.required else str | None
        default = inspect.Parameter.empty if arg.required else None
    return inspect.Parameter(arg.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                             annotation=annotation, default=default)


def slash_command(
    spec: CommandSpec, handler: CommandHandler
) -> app_commands.Command[Any, ..., None]:
    async def callback(interaction: discord.Interaction, **options: str | None) -> None:
        words: list[str] = []
        for arg in spec.args:
            value = options.get(arg.name)
            if value:
                # A "rest" option is one text box on Discord: the core reads it word by word.
                words.extend(value.split() if arg.rest else [value])
        await handler.on_command(interaction, spec.name, tuple(words))

    interaction = inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=discord.Interaction)
    callback.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [interaction, *(_option(arg) for arg in spec.args)]
    )
    if spec.args:
        callback = app_commands.describe(
            **{arg.name: arg.help[:MAX_DESCRIPTION] for arg in spec.args}
        )(callback)
    return app_commands.Command(name=spec.name, description=spec.description[:MAX_DESCRIPTION],
                                callback=callback)


def add_commands(tree: app_commands.CommandTree[Any], handler: CommandHandler) -> None:
    for spec in COMMANDS:
        if not spec.alias:
            tree.add_command(slash_command(spec, handler))
