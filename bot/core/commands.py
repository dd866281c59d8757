"""The one command table: each command's name, who may run it, its arguments, its help line and
its handler. Telegram's handlers and BotFather list, Discord's slash commands, `/help` and the
console's actions are all made from `COMMANDS`, so adding a command touches this file only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.core import formatting as fmt
from bot.core import people
from bot.core.governance import audit_command, trust_command
from bot.core.job_watcher import RetrainRequest
from bot.core.messages import Command, Reply
from bot.core.operators import is_operator
from bot.core.outcomes import (
    CommandData,
    CommandResult,
    CommandStatus,
    LabelAdded,
    ModelServing,
    RetrainQueued,
)
from bot.core.settings_menu import settings_command
from bot.core.setup_check import needs_in
from bot.errors import SwitchError
from inference.metadata import REPORT_FILE
from storage.errors import InvalidInputError, LabelExistsError
from storage.records import AuditAction

if TYPE_CHECKING:
    from bot.core.service import MemeService


class Role(StrEnum):
    everyone = "everyone"
    admin = "admin"  # a chat admin (or an operator): their chat's corrections and settings
    # The bot's operators (super-admins, the console's admin): what every chat shares. A
    # delegated chat's admins too, for a command that is `delegable`.
    operator = "operator"


ROLE_NOTE = {Role.everyone: "", Role.admin: "admins", Role.operator: "operators"}


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    # Takes the rest of the words (a platform with typed options asks for it as one text).
    rest: bool = False


Handler = Callable[["MemeService", Command], Awaitable[CommandResult]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    role: Role
    summary: str  # one line: the help text and Discord's description
    handler: Handler
    usage: str = ""  # the synopsis after the name, e.g. "[fast|full]"
    args: tuple[Arg, ...] = ()
    # Another name for a command (Telegram's /start is /help): not listed in /help, and not
    # registered where the platform has no such convention (Discord).
    alias: bool = False
    # An operators' command that a delegated chat's admins may use too (/delegate is not).
    delegable: bool = True

    @property
    def description(self) -> str:
        note = ROLE_NOTE[self.role]
        return f"{note.capitalize()}: {self.summary}" if note else self.summary

    @property
    def usage_text(self) -> str:
        return f"Usage: /{self.name} {self.usage}".rstrip()

    def result(self, status: CommandStatus, text: str, data: CommandData = None,
               *, private: bool = False) -> CommandResult:
        return CommandResult(self.name, status, Reply(text, private=private), data)

    def done(self, text: str, data: CommandData = None) -> CommandResult:
        return self.result(CommandStatus.done, text, data)

    def rejected(self, text: str) -> CommandResult:
        return self.result(CommandStatus.rejected, text)

    def usage_error(self, detail: str = "") -> CommandResult:
        return self.result(CommandStatus.usage, f"{self.usage_text}{detail}")


# ------------------------------------------------------------------------------ handlers


async def _help(service: MemeService, command: Command) -> CommandResult:
    return spec("help").done(help_text())


async def _stats(service: MemeService, command: Command) -> CommandResult:
    classifier = service.models.current
    # A chat sees its own memes; an operator sees every chat's.
    everywhere = is_operator(command.actor, service.policy.super_admins)
    chat = command.chat
    stats = await service.storage.stats(None if everywhere else (chat.platform, chat.chat_id))
    return spec("stats").done(
        fmt.stats_text(stats, classifier.version, classifier.meta.metrics)
    )


async def _labels(service: MemeService, command: Command) -> CommandResult:
    labels = [label.name for label in await service.storage.list_labels()]
    return spec("labels").done(fmt.labels_text(labels, service.models.current.labels))


async def _model(service: MemeService, command: Command) -> CommandResult:
    classifier = service.models.current
    versions = await service.storage.list_model_versions()
    # The trainer writes the report beside the model; people read it on the console's Models
    # page (a path on the server would mean nothing to a chat member).
    has_report = await asyncio.to_thread((classifier.folder / REPORT_FILE).is_file)
    text = fmt.model_text(classifier.version, classifier.meta.metrics, versions, has_report)
    return spec("model").done(text, ModelServing(classifier.version))


async def _retrain(service: MemeService, command: Command) -> CommandResult:
    # Only queued here: a separate trainer process claims the job, so the bot never blocks on
    # (or imports) the training code. Fast: a new head on cached embeddings; full: a fine-tune.
    me = spec("retrain")
    kind = command.args[0].lower() if command.args else "fast"
    if kind not in me.args[0].choices or len(command.args) > 1:
        return me.usage_error()
    queued = await service.storage.enqueue_retrain(command.actor.qualified_id, kind)
    job = queued.job
    await audit_command(service, command, AuditAction.retrain, to_value=kind,
                        detail=f"job #{job.id}" + ("" if queued.created else " (joined)"))
    if service.jobs is not None:  # told the numbers when the job ends
        service.jobs.track(job.id, RetrainRequest(command.chat, command.actor, command.message_id))
    data = RetrainQueued(job.id, kind, queued.created)
    text = fmt.retrain_text(data, job.status.value, service.models.current.version,
                            answered_later=service.jobs is not None)
    note = service.trainer.queued_note() if job.status.value == "queued" else None
    return me.done(f"{text} {note}" if note else text, data)


async def _addlabel(service: MemeService, command: Command) -> CommandResult:
    me = spec("addlabel")
    if len(command.args) != 1:
        return me.usage_error(" (lowercase letters, digits, underscores)")
    name = command.args[0].strip().lower().replace("-", "_")
    try:
        await service.storage.add_label(name, added_by=command.actor.qualified_id)
    except LabelExistsError:
        return me.rejected(fmt.label_exists_text(name))
    except InvalidInputError:
        return me.rejected(fmt.bad_label_text(name))
    await audit_command(service, command, AuditAction.add_label, to_value=name)
    return me.done(fmt.label_added_text(name), LabelAdded(name))


async def _rollback(service: MemeService, command: Command) -> CommandResult:
    me = spec("rollback")
    if len(command.args) > 1:
        return me.usage_error()
    serving = service.models.current.version
    try:
        version = await service.switcher.rollback(command.args[0] if command.args else None)
    except SwitchError as exc:
        return me.rejected(fmt.refused_text("roll back", str(exc)))
    await audit_command(service, command, AuditAction.rollback, from_value=serving,
                        to_value=version.version)
    return me.done(fmt.serving_text(version.version), ModelServing(version.version))


async def _check(service: MemeService, command: Command) -> CommandResult:
    me = spec("check")
    probe = service.setup.get(command.chat.platform)
    if probe is None:  # the console: nothing a platform must allow
        return me.result(CommandStatus.done, fmt.setup_report_text([], checked=False),
                         private=True)
    findings = await probe.check_chat(command.chat, await needs_in(service, command.chat))
    return me.result(CommandStatus.done, fmt.setup_report_text(findings), private=True)


async def _forgetme(service: MemeService, command: Command) -> CommandResult:
    return await people.forget_me(service, command, spec("forgetme"))


async def _purgechat(service: MemeService, command: Command) -> CommandResult:
    return await people.purge_chat(service, command, spec("purgechat"))


async def _privacy(service: MemeService, command: Command) -> CommandResult:
    return await people.privacy(service, command, spec("privacy"))


async def _reposts(service: MemeService, command: Command) -> CommandResult:
    return await _settings_audited(
        service, command, await service.moderation.reposts_command(command, spec("reposts")))


async def _sort(service: MemeService, command: Command) -> CommandResult:
    return await _settings_audited(
        service, command, await service.moderation.sort_command(command, spec("sort")))


async def _settings_audited(service: MemeService, command: Command, result: CommandResult
                            ) -> CommandResult:
    """A chat setting changed (a command with arguments that succeeded) goes to the log."""
    if result.ok and command.args:
        await audit_command(service, command, AuditAction.settings,
                            to_value=" ".join(command.args)[:128], detail=f"/{command.name}")
    return result


async def _trust(service: MemeService, command: Command) -> CommandResult:
    return await trust_command(service, command, spec("trust"), delegate=False)


async def _delegate(service: MemeService, command: Command) -> CommandResult:
    return await trust_command(service, command, spec("delegate"), delegate=True)
async def _settings(service: MemeService, command: Command) -> CommandResult:
    return await settings_command(service, command, spec("settings"))


# --------------------------------------------------------------------------------- table

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("help", Role.everyone, "What this bot does and its commands", _help),
    CommandSpec("start", Role.everyone, "What this bot does and its commands", _help,
                alias=True),
    CommandSpec("stats", Role.everyone, "Memes seen here, labels, corrections and the model",
                _stats),
    CommandSpec("privacy", Role.everyone, "What I keep about you and for how long", _privacy),
    CommandSpec("forgetme", Role.everyone, "Delete your memes, captions and name from my records",
                _forgetme),
    CommandSpec("labels", Role.everyone, "The labels memes can get", _labels),
    CommandSpec("model", Role.everyone, "The model serving now and earlier versions", _model),
    CommandSpec(
        "retrain", Role.operator, "learn from the corrections", _retrain, "[fast|full]",
        (Arg("kind", "fast: a new head in minutes (default); full: a fine-tune",
             choices=("fast", "full")),),
    ),
    CommandSpec(
        "addlabel", Role.operator, "add a label memes can get", _addlabel, "NAME",
        (Arg("name", "lowercase letters, digits or underscores", required=True),),
    ),
    CommandSpec(
        "rollback", Role.operator, "serve an earlier model version", _rollback, "[VERSION]",
        (Arg("version", "the version to serve (default: the previous one)"),),
    ),
    CommandSpec(
        "purgechat", Role.operator, "delete everything kept about a chat", _purgechat,
        "[CHAT_ID] confirm",
        (Arg("confirm", "confirm (or: CHAT_ID confirm for another chat)", rest=True),),
        delegable=False,
    ),
    CommandSpec("check", Role.admin, "what I am missing here (permissions, privacy mode)",
                _check),
    CommandSpec(
        "reposts", Role.admin, "what happens to reposts here", _reposts,
        "[off|note|delete|window DAYS|window default]",
        (Arg("setting", "off, note, delete, window DAYS or window default "
                        "(empty: the current setting)", rest=True),),
    ),
    CommandSpec(
        "sort", Role.admin, "copy a label's memes into a place", _sort,
        "[LABEL PLACE|LABEL off|off]",
        (Arg("label", "a label (/labels), or off to stop all sorting (empty: list the places)"),
         Arg("place", "where to copy them (Discord: a channel or thread), or off", rest=True)),
    ),
    CommandSpec(
        "trust", Role.operator, "let a chat's corrections train (off: they wait for review)",
        _trust, "[CHAT] [off] | list",
        (Arg("chat", "this chat (empty), its id or platform:id, + off to take it back; or list",
             rest=True),),
    ),
    CommandSpec(
        "delegate", Role.operator, "let a chat's admins retrain, roll back and add labels",
        _delegate, "[CHAT] [off]",
        (Arg("chat", "this chat (empty), its id or platform:id; off to take it back",
             rest=True),),
        delegable=False,
    ),
    CommandSpec(
        "settings", Role.admin, "this chat's rules: replies, threshold, topics, off-topic memes",
        _settings, "[server] [NAME VALUE ...]",
        (Arg("setting", "the setting to change (empty: the menu)",
             choices=("enabled", "replies", "threshold", "topics", "offtopic", "reactions")),
         Arg("value", "its new value, or default (the server's or the bot's)", rest=True),
         Arg("scope", "this channel (default) or the whole server", choices=("channel",
                                                                             "server"))),
    ),
)

_BY_NAME = {command.name: command for command in COMMANDS}


def find(name: str) -> CommandSpec | None:
    return _BY_NAME.get(name.lower())


def spec(name: str) -> CommandSpec:
    return _BY_NAME[name]


def help_text() -> str:
    lines = [
        f"/{c.name}{' ' + c.usage if c.usage else ''} – "
        f"{f'({ROLE_NOTE[c.role]}) ' if ROLE_NOTE[c.role] else ''}{c.summary}"
        for c in COMMANDS if not c.alias
    ]
    return fmt.HELP_INTRO + "\n\n" + "\n".join(lines)
