"""`/settings` on Discord: the core's `SettingsMenu` as an ephemeral view, one select per
setting (several labels at once for the on-topic ones) and toggle buttons for on/off. Its
components are `DynamicItem`s routed by pattern, so a pick reaches the handler whichever
process showed the menu; each pick becomes the core's payload (`menu.payload(name, value)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.core import formatting as fmt
from bot.core.chat_rules import DEFAULT
from bot.core.outcomes import SettingRow, SettingsMenu
from bot.discord.views import CoreButton

if TYPE_CHECKING:
    import re

    from bot.discord.views import HasButtonHandler

TOGGLES = ("enabled", "reactions")  # on/off: a button each, in the last row
MAX_OPTIONS = 25  # Discord's limit per select
ALL = "all"


class SettingsSelect(discord.ui.DynamicItem[discord.ui.Select[Any]],
                     template=r"^s:[cg]:v:[a-z]+$"):
    """A setting's choices; its custom id is the payload without the value."""

    def __init__(self, select: discord.ui.Select[Any]) -> None:
        super().__init__(select)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str],
        /,
    ) -> SettingsSelect:
        if not isinstance(item, discord.ui.Select):
            raise TypeError("a settings select arrived as another component")
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        values = list(self.item.values)
        value = ALL if ALL in values else ",".join(values)
        client: HasButtonHandler = interaction.client  # type: ignore[assignment]
        await client.handlers.on_button(interaction, f"{self.item.custom_id}:{value}")


class SettingsToggle(CoreButton, template=r"^s:[cg]:v:[a-z]+:(?:on|off)$"):
    """An on/off setting: pressing it switches it (highlighted while on)."""


SETTINGS_KINDS = (SettingsSelect, SettingsToggle)


def _select(menu: SettingsMenu, row: SettingRow) -> discord.ui.Select[Any]:
    options = [discord.SelectOption(label=c.text[:100], value=c.value, default=c.current)
               for c in row.choices]
    extra = (ALL, fmt.ALL_LABELS) if row.multi else (DEFAULT, fmt.DEFAULT_CHOICE)
    options.append(discord.SelectOption(label=extra[1], value=extra[0]))
    options = options[:MAX_OPTIONS]
    return discord.ui.Select(
        custom_id=menu.payload(row.name, "").rstrip(":"),
        placeholder=fmt.setting_button_text(row)[:150],
        min_values=1, max_values=len(options) if row.multi else 1, options=options,
    )


def settings_view(menu: SettingsMenu) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for row in menu.rows:
        if row.name in TOGGLES:
            on = any(c.current and c.value == "on" for c in row.choices)
            view.add_item(SettingsToggle(fmt.setting_button_text(row),
                                         menu.payload(row.name, "off" if on else "on"), on))
        else:
            view.add_item(SettingsSelect(_select(menu, row)))
    return view
