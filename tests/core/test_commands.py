"""The one command table: who may run what, typed results, and every platform's list made from
it (a command declared anywhere else fails here)."""

from __future__ import annotations

import discord
from discord import app_commands
from telegram.ext import CommandHandler

from bot.core.commands import COMMANDS, Role, help_text
from bot.core.messages import Actor, ChatRef, Command
from bot.core.outcomes import CommandStatus, LabelAdded, RepostSettings, RetrainQueued, SortPlaces
from bot.core.runtime import CoreRuntime
from bot.discord.commands import add_commands
from bot.telegram.app import TelegramConfig, bot_commands, build

CHAT = ChatRef("telegram", "-100300")
ROOT = Actor("telegram", "1", "Root")  # a super-admin (fast_settings)
EVE = Actor("telegram", "66", "Eve")


def command(name: str, *args: str, actor: Actor = ROOT) -> Command:
    return Command(CHAT, actor, name, args, message_id="42")


async def test_admin_commands_are_refused_privately_to_others(core: CoreRuntime) -> None:
    for spec in COMMANDS:
        result = await core.service.handle_command(command(spec.name, actor=EVE), None)
        assert result is not None
        if spec.role is not Role.everyone:
            assert result.status is CommandStatus.refused and result.reply.private
            assert f"/{spec.name}" in result.reply.text
        else:
            assert result.ok and not result.reply.private
    assert await core.service.handle_command(command("frobnicate"), None) is None


async def test_results_carry_their_data(core: CoreRuntime) -> None:
    added = await core.service.handle_command(command("addlabel", "Genshin-Impact"), None)
    assert added is not None and added.data == LabelAdded("genshin_impact")
    again = await core.service.handle_command(command("addlabel", "genshin_impact"), None)
    assert again is not None and again.status is CommandStatus.rejected and again.data is None
    usage = await core.service.handle_command(command("retrain", "sideways"), None)
    assert usage is not None and usage.status is CommandStatus.usage
    assert usage.reply.text == "Usage: /retrain [fast|full]"
    queued = await core.service.handle_command(command("retrain", "full"), None)
    assert queued is not None and isinstance(queued.data, RetrainQueued)
    assert queued.data.kind == "full" and queued.data.created
    sort = await core.service.handle_command(command("sort", "doom", "memes", "tab"), None)
    assert sort is not None and sort.data == SortPlaces({"doom": "memes tab"})
    reposts = await core.service.handle_command(command("reposts", "window", "7"), None)
    assert reposts is not None and isinstance(reposts.data, RepostSettings)
    assert reposts.data.window_days == 7
    nothing = await core.service.handle_command(command("rollback"), None)
    assert nothing is not None and nothing.status is CommandStatus.rejected


async def test_model_points_to_the_console_not_a_server_path(core: CoreRuntime) -> None:
    result = await core.service.handle_command(command("model"), None)
    assert result is not None and str(core.models.current.folder) not in result.reply.text


def test_help_lists_every_command_once() -> None:
    text = help_text()
    for spec in COMMANDS:
        assert (f"/{spec.name}" in text) is (not spec.alias)
        assert text.count(f"/{spec.name} ") + text.count(f"/{spec.name}\n") <= 1 or spec.alias


def test_telegram_handlers_and_menu_come_from_the_table(core: CoreRuntime) -> None:
    application, _ = build(core.service, TelegramConfig(token="1:x"))
    handled = {name for group in application.handlers.values() for h in group
               if isinstance(h, CommandHandler) for name in h.commands}
    assert handled == {spec.name for spec in COMMANDS}
    assert [c.command for c in bot_commands()] == [s.name for s in COMMANDS if not s.alias]


async def test_discord_slash_commands_come_from_the_table() -> None:
    client = discord.Client(intents=discord.Intents.none())
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    calls: list[tuple[str, tuple[str, ...]]] = []

    class Recorder:
        async def on_command(self, interaction: discord.Interaction, name: str,
                             args: tuple[str, ...] = ()) -> None:
            calls.append((name, tuple(args)))

    add_commands(tree, Recorder())
    slash = {c.name: c for c in tree.get_commands()}
    assert set(slash) == {s.name for s in COMMANDS if not s.alias}
    for spec in COMMANDS:
        if spec.alias:
            continue
        options = slash[spec.name].parameters  # type: ignore[union-attr]
        assert [o.name for o in options] == [a.name for a in spec.args]
        for option, arg in zip(options, spec.args, strict=True):
            assert [c.value for c in option.choices] == list(arg.choices)
            assert option.required is arg.required
    sort = slash["sort"]
    await sort.callback(None, label="doom", place="memes tab")  # type: ignore[arg-type, union-attr]
    assert calls == [("sort", ("doom", "memes", "tab"))]
