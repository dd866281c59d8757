"""The label buttons under a reply: `discord.ui` components that survive restarts.

Each button's custom_id is the core's button payload. `LabelButton` and `RepostButton` are
`DynamicItem`s registered once at start, so a press on any reply, however old and whichever
process sent it, reaches the handler, and no per-message view is kept in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.core.governance import UNDO_PAYLOAD_PATTERN
from bot.core.messages import Reply
from bot.core.moderation import REPOST_PAYLOAD_PATTERN
from bot.core.offtopic import ADMIN_PAYLOAD_PATTERN
from bot.core.service import PAYLOAD_PATTERN

if TYPE_CHECKING:
    import re

MAX_BUTTONS = 25  # Discord's limit: 5 rows of 5
MAX_LABEL = 80


class ButtonHandler(Protocol):
    async def on_button(self, interaction: discord.Interaction, payload: str) -> None: ...


class HasButtonHandler(Protocol):
    handlers: ButtonHandler


class CoreButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template="^$"):
    """A button whose payload the core handles (`MemeService.handle_button`)."""

    def __init__(self, text: str, payload: str, current: bool = False) -> None:
        style = discord.ButtonStyle.primary if current else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=text[:MAX_LABEL], custom_id=payload,
                                           style=style))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str],
        /,
    ) -> CoreButton:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(label or "", match.group(0))

    async def callback(self, interaction: discord.Interaction) -> None:
        client: HasButtonHandler = interaction.client  # type: ignore[assignment]
        await client.handlers.on_button(interaction, self.item.custom_id or "")


class LabelButton(CoreButton, template=f"^{PAYLOAD_PATTERN}$"):
    """Sets the meme's label."""


class RepostButton(CoreButton, template=f"^{REPOST_PAYLOAD_PATTERN}$"):
    """Under a repost note: "not a repost" / "exempt"."""


class UndoButton(CoreButton, template=f"^{UNDO_PAYLOAD_PATTERN}$"):
    """Under a corrected label: takes the correction back."""


class AdminButton(CoreButton, template=f"^{ADMIN_PAYLOAD_PATTERN}$"):
    """Under a meme in the admins' channel: Allow / Keep removed / a label."""


BUTTON_KINDS = (LabelButton, RepostButton, UndoButton, AdminButton)


def label_view(reply: Reply) -> discord.ui.View | None:
    """The buttons of `reply`, or None for a reply without any."""
    if not reply.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in reply.buttons[:MAX_BUTTONS]:
        kind = next((k for k in BUTTON_KINDS
                     if k.__discord_ui_compiled_template__.match(button.payload)), None)
        if kind is not None:  # a payload no pattern routes would be a dead button
            view.add_item(kind(button.text, button.payload, current=button.current))
    return view
