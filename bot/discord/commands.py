"""The slash commands: each one hands its name and options to `MemeService.handle_command`
(which decides who may run it and words the answer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import discord
from discord import app_commands


class CommandHandler(Protocol):
    async def on_command(self, interaction: discord.Interaction, name: str,
                         args: Sequence[str] = ()) -> None: ...


def add_commands(tree: app_commands.CommandTree, handler: CommandHandler) -> None:
    @tree.command(name="help", description="What this bot does and its commands")
    async def help_(interaction: discord.Interaction) -> None:
        await handler.on_command(interaction, "help")

    @tree.command(name="stats", description="Memes seen, labels, corrections and the model")
    async def stats(interaction: discord.Interaction) -> None:
        await handler.on_command(interaction, "stats")

    @tree.command(name="labels", description="The labels memes can get")
    async def labels(interaction: discord.Interaction) -> None:
        await handler.on_command(interaction, "labels")

    @tree.command(name="model", description="The model serving now and earlier versions")
    async def model(interaction: discord.Interaction) -> None:
        await handler.on_command(interaction, "model")

    @tree.command(name="retrain", description="Admins: learn from the corrections")
    @app_commands.describe(kind="fast: a new head in minutes (default); full: a fine-tune")
    async def retrain(interaction: discord.Interaction,
                      kind: Literal["fast", "full"] = "fast") -> None:
        await handler.on_command(interaction, "retrain", (kind,))

    @tree.command(name="addlabel", description="Admins: add a label memes can get")
    @app_commands.describe(name="lowercase letters, digits or underscores")
    async def addlabel(interaction: discord.Interaction, name: str) -> None:
        await handler.on_command(interaction, "addlabel", (name,))

    @tree.command(name="reposts", description="Admins: what happens to reposts here")
    @app_commands.describe(setting="off, note, delete, window DAYS or window default "
                                   "(empty: the current setting)")
    async def reposts(interaction: discord.Interaction, setting: str | None = None) -> None:
        await handler.on_command(interaction, "reposts", tuple((setting or "").split()))

    @tree.command(name="sort", description="Admins: copy a label's memes into a channel or thread")
    @app_commands.describe(label="a label (/labels), or off to stop all sorting (empty: list the places)",
                           place="a channel or thread (type # to pick one), or off")
    async def sort(interaction: discord.Interaction, label: str | None = None, place: str | None = None) -> None:
        await handler.on_command(interaction, "sort", tuple(a for a in (label, place) if a))

    @tree.command(name="rollback", description="Admins: serve an earlier model version")
    @app_commands.describe(version="the version to serve (default: the previous one)")
    async def rollback(interaction: discord.Interaction, version: str | None = None) -> None:
        await handler.on_command(interaction, "rollback", (version,) if version else ())
