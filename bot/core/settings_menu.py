"""`/settings`: a chat's rules shown as a menu and changed from it (or typed: `/settings
replies silent threshold 70%`). One menu for every platform: Telegram shows it a page at a
time as inline buttons edited in place, Discord as an ephemeral view of selects, the console
as a panel; each choice comes back here as a payload (`s:SCOPE:...`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from bot.core import formatting as fmt
from bot.core.chat_rules import (
    BY_NAME,
    CHAT,
    DEFAULT,
    SERVER,
    SETTINGS,
    ChatRules,
    SettingsError,
    apply_changes,
    parse_value,
    parse_words,
    resolve,
    scope_key,
)
from bot.core.governance import may_set_server
from bot.core.messages import Actor, Button, ChatRef, Command, Reply
from bot.core.outcomes import (
    CommandResult,
    CommandStatus,
    CorrectionOutcome,
    CorrectionStatus,
    SettingChoice,
    SettingRow,
    SettingsMenu,
)
from storage.records import ChatSettings

if TYPE_CHECKING:
    from bot.core.commands import CommandSpec
    from bot.core.service import MemeService

SETTINGS_PREFIX = "s"
SCOPE_CODES = {CHAT: "c", SERVER: "g"}
MAIN = "main"
# What every settings payload matches (Discord routes its menu's components by it).
SETTINGS_PAYLOAD_PATTERN = rf"{SETTINGS_PREFIX}:[cg]:.+"


def _prefix(scope: str) -> str:
    return f"{SETTINGS_PREFIX}:{SCOPE_CODES[scope]}:"


async def scoped_rules(service: MemeService, chat: ChatRef, scope: str
                       ) -> tuple[ChatRules, ChatSettings]:
    """The rules in force for `scope` and the settings stored for it (None fields inherit)."""
    layers = await service.storage.chat_settings_layers(chat.platform, chat.chat_id,
                                                        chat.server_id)
    if scope == SERVER:
        layers = layers[1:]
        if not layers:
            raise SettingsError(fmt.NO_SERVER_HERE)
    return resolve(layers, service.rule_defaults), layers[0]


async def build_menu(service: MemeService, chat: ChatRef, scope: str) -> SettingsMenu:
    rules, own = await scoped_rules(service, chat, scope)
    labels = [label.name for label in await service.storage.list_labels()]
    values: dict[str, tuple[str, object]] = {
        "enabled": ("on" if rules.enabled else "off", own.enabled),
        "replies": (rules.reply_mode.value, own.reply_mode),
        "threshold": (f"{rules.confidence_threshold:g}", own.confidence_threshold),
        "topics": (",".join(sorted(rules.on_topic)) if rules.on_topic is not None else "all",
                   own.on_topic_labels),
        "offtopic": (rules.offtopic_action.value, own.offtopic_action),
        "reactions": ("on" if rules.reaction_corrections else "off", own.reaction_corrections),
    }
    rows = []
    for setting in SETTINGS:
        current, stored = values[setting.name]
        if setting.name == "topics":
            on = rules.on_topic
            choices = tuple(SettingChoice(name, fmt.display_name(name),
                                          on is None or name in on) for name in labels)
        else:
            options = list(setting.values)
            if setting.name == "threshold" and current not in options:
                options.append(current)
            choices = tuple(SettingChoice(v, fmt.setting_value_text(setting.name, v),
                                          v == current) for v in options)
        rows.append(SettingRow(setting.name, setting.title,
                               fmt.setting_value_text(setting.name, current),
                               stored is None, choices, multi=setting.name == "topics"))
    return SettingsMenu(scope, tuple(rows), _prefix(scope) + "v:")


def menu_reply(menu: SettingsMenu, page: str = MAIN, note: str | None = None) -> Reply:
    """The menu as text and buttons: the main page lists the settings, a setting's page its
    choices (Telegram edits one message from page to page)."""
    prefix = _prefix(menu.scope)
    text = fmt.settings_text(menu, note)
    row = next((r for r in menu.rows if r.name == page), None)
    if row is None:
        buttons = [Button(fmt.setting_button_text(r), f"{prefix}p:{r.name}") for r in menu.rows]
        buttons.append(Button(fmt.CLOSE_MENU, f"{prefix}x"))
        return Reply(text, tuple(buttons))
    if row.multi:
        options = [Button(fmt.button_text(c.value, current=c.current), f"{prefix}t:{c.value}",
                          current=c.current) for c in row.choices]
        options.append(Button(fmt.ALL_LABELS, menu.payload(row.name, "all")))
    else:
        options = [Button(fmt.choice_text(c.text, current=c.current),
                          menu.payload(row.name, c.value), current=c.current)
                   for c in row.choices]
    options.append(Button(fmt.DEFAULT_CHOICE, menu.payload(row.name, DEFAULT)))
    options.append(Button(fmt.BACK, f"{prefix}p:{MAIN}"))
    return Reply(f"{text}\n\n{fmt.pick_text(row.title)}", tuple(options))


def _parse(payload: str) -> tuple[str, str, list[str]] | None:
    parts = payload.split(":")
    scopes = {code: scope for scope, code in SCOPE_CODES.items()}
    if len(parts) < 3 or parts[0] != SETTINGS_PREFIX or parts[1] not in scopes:
        return None
    return scopes[parts[1]], parts[2], parts[3:]


async def press(service: MemeService, chat: ChatRef, actor: Actor, payload: str
                ) -> CorrectionOutcome:
    """A choice in the menu (the caller checked that `actor` administers the chat; the
    server's menu needs more: `may_set_server`)."""
    parsed = _parse(payload)
    if parsed is None:
        return CorrectionOutcome(CorrectionStatus.invalid, fmt.STALE_BUTTON)
    scope, kind, rest = parsed
    if scope == SERVER and not may_set_server(service, actor):
        return CorrectionOutcome(CorrectionStatus.refused, fmt.SERVER_SETTINGS_REFUSED)
    try:
        if kind == "x":  # done: the summary stays, without buttons
            menu = await build_menu(service, chat, scope)
            return _shown(menu, Reply(fmt.settings_text(menu, None)), fmt.MENU_CLOSED)
        if kind == "p" and len(rest) == 1:
            menu = await build_menu(service, chat, scope)
            return _shown(menu, menu_reply(menu, rest[0]), "")
        if kind == "t" and len(rest) == 1:
            menu = await build_menu(service, chat, scope)
            topics = next(r for r in menu.rows if r.name == "topics")
            on = {c.value for c in topics.choices if c.current} ^ {rest[0]}
            return await _change(service, chat, actor, scope, "topics",
                                 ",".join(sorted(on)) or "", page="topics")
        if kind == "v" and len(rest) == 2 and rest[0] in BY_NAME:
            page = rest[0] if rest[0] == "topics" else MAIN
            return await _change(service, chat, actor, scope, rest[0], rest[1], page=page)
    except SettingsError as exc:
        return CorrectionOutcome(CorrectionStatus.invalid, str(exc))
    return CorrectionOutcome(CorrectionStatus.invalid, fmt.STALE_BUTTON)


def _shown(menu: SettingsMenu, reply: Reply, notice: str) -> CorrectionOutcome:
    return CorrectionOutcome(CorrectionStatus.shown, notice, reply, menu=menu)


async def _change(service: MemeService, chat: ChatRef, actor: Actor, scope: str, name: str,
                  raw: str, *, page: str) -> CorrectionOutcome:
    labels = [label.name for label in await service.storage.list_labels()]
    setting = BY_NAME[name]
    if name == "topics" and not raw:
        raise SettingsError(fmt.topics_refused_text([], labels))
    value = parse_value(setting, raw, labels)
    await apply_changes(service.storage, chat, scope, {setting.field: value}, actor)
    menu = await build_menu(service, chat, scope)
    note = fmt.setting_changed_text(setting.title, actor.display_name)
    return CorrectionOutcome(CorrectionStatus.settings_changed, fmt.SAVED,
                             menu_reply(menu, page, note), changed=True, menu=menu)


async def settings_command(service: MemeService, command: Command, me: CommandSpec
                           ) -> CommandResult:
    """`/settings [server]`: the menu; `/settings [server] NAME VALUE ...`: change them."""
    labels = [label.name for label in await service.storage.list_labels()]
    try:
        scope, changes = parse_words(command.args, labels)
        scope_key(command.chat, scope)
        if scope == SERVER and not may_set_server(service, command.actor):
            return me.result(CommandStatus.refused, fmt.SERVER_SETTINGS_REFUSED, private=True)
        if changes:
            await apply_changes(service.storage, command.chat, scope, changes, command.actor)
        menu = await build_menu(service, command.chat, scope)
    except SettingsError as exc:
        return me.result(CommandStatus.rejected, str(exc), private=True)
    note = fmt.settings_saved_text(len(changes)) if changes else None
    reply = dataclasses.replace(menu_reply(menu, MAIN, note), private=True)
    return CommandResult(me.name, CommandStatus.done, reply, menu)
