"""One reply for a group of memes posted together (a Telegram album): each item's own answer on
a numbered line, and each item's label buttons marked with its number. The buttons keep the
per-post payloads of `MemeService.handle_button`, so an admin corrects one item at a time and
the correction is edited into that item's line only (`with_item`), from the message as the
platform hands it back: nothing has to be remembered across restarts.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.delivery import Delivery
from bot.core.messages import Button, ChatRef, Reply
from bot.core.outcomes import CorrectionOutcome, PostOutcome
from bot.core.service import parse_payload

# "2. Doom (97%)" and the buttons "2: ✓ Doom": the number is the item's place in the album.
_LINE = re.compile(r"^(\d+)\. ")
_BUTTON = re.compile(r"^(\d+): ")


@dataclass(frozen=True)
class AlbumItem:
    number: int  # 1-based place in the album, as people count the pictures
    message_id: str  # the item's own message
    outcome: PostOutcome


def line_text(number: int, text: str) -> str:
    return f"{number}. {text}"


def button_text(number: int, text: str) -> str:
    return f"{number}: {text}"


def album_reply(items: Sequence[AlbumItem]) -> Reply | None:
    """The one reply to an album: a line for each item the core answered (a label, or why it
    was not labelled), or None when no item has anything to say (silent mode, a disabled
    chat, a redelivered album)."""
    answered = [(item.number, item.outcome.reply) for item in items
                if item.outcome.reply is not None]
    if not answered:
        return None
    text = "\n".join(line_text(n, reply.text) for n, reply in answered)
    buttons = tuple(Button(button_text(n, b.text), b.payload, b.current)
                    for n, reply in answered for b in reply.buttons)
    return Reply(text, buttons)


def post_ids(album: Reply) -> list[int]:
    """The posts an album reply's buttons are about, in order."""
    found: list[int] = []
    for button in album.buttons:
        parsed = parse_payload(button.payload)
        if parsed is not None and parsed[0] not in found:
            found.append(parsed[0])
    return found


def is_album(shown: Reply) -> bool:
    """Whether a reply (as the platform shows it) is an album's: its buttons carry numbers."""
    return any(_BUTTON.match(b.text) and parse_payload(b.payload) for b in shown.buttons)


def with_item(album: Reply, post_id: int, item: Reply) -> Reply | None:
    """`album` with post `post_id`'s line and buttons replaced by `item` (its correction);
    None when the album has no buttons of that post."""
    number = None
    for button in album.buttons:
        parsed = parse_payload(button.payload)
        found = _BUTTON.match(button.text)
        if parsed is not None and parsed[0] == post_id and found:
            number = int(found.group(1))
            break
    if number is None:
        return None
    lines = [line_text(number, item.text) if _number(_LINE, line) == number else line
             for line in album.text.split("\n")]
    buttons: list[Button] = []
    replaced = False
    for button in album.buttons:
        parsed = parse_payload(button.payload)
        if parsed is None or parsed[0] != post_id:
            buttons.append(button)
        elif not replaced:  # the item's buttons stay where they were
            buttons += [Button(button_text(number, b.text), b.payload, b.current)
                        for b in item.buttons]
            replaced = True
    return Reply("\n".join(lines), tuple(buttons))


def _number(pattern: re.Pattern[str], text: str) -> int | None:
    found = pattern.match(text)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class _Shown:
    chat_id: str
    message_id: str  # the album reply
    meme_id: str  # the message it answers (the album's first item)


class AlbumDelivery:
    """`Delivery` for albums: each item's repost note, removal and admin log as for a single
    meme, then the one album reply; a correction of an item (button or reaction) edits its
    line in that reply. Which reply shows which post is kept in memory (bounded); a button
    press needs none of it, because the pressed message carries the album."""

    def __init__(self, delivery: Delivery, capacity: int = 2_000) -> None:
        self.delivery = delivery
        self._capacity = capacity
        self._by_post: OrderedDict[int, _Shown] = OrderedDict()
        self._albums: dict[tuple[str, str], Reply] = {}  # (chat, reply id) -> what it shows

    async def album_outcome(self, chat: ChatRef, items: Sequence[AlbumItem]) -> None:
        if not items:
            return
        for item in items:  # everything but the label reply, item by item
            await self.delivery.post_outcome(chat, item.message_id,
                                             dataclasses.replace(item.outcome, reply=None))
        album = album_reply(items)
        if album is None:
            return
        meme_id = items[0].message_id
        sent = await self.delivery.port.reply(chat, meme_id, album)
        if sent is not None:
            self.remember(chat, sent, meme_id, album)

    def remember(self, chat: ChatRef, reply_id: str, meme_id: str, album: Reply) -> None:
        shown = _Shown(chat.chat_id, reply_id, meme_id)
        self._albums[(chat.chat_id, reply_id)] = album
        for post_id in post_ids(album):
            self._by_post.pop(post_id, None)
            self._by_post[post_id] = shown
        while len(self._by_post) > self._capacity:
            _, dropped = self._by_post.popitem(last=False)
            if dropped not in self._by_post.values():
                self._albums.pop((dropped.chat_id, dropped.message_id), None)

    def pressed(self, chat: ChatRef, reply_id: str, shown: Reply,
                outcome: CorrectionOutcome) -> Reply | None:
        """What a pressed message should show after `outcome`: the album with the item's
        line changed when it is an album reply, else the outcome's own reply."""
        if outcome.reply is None or outcome.post_id is None or not is_album(shown):
            return outcome.reply
        current = self._albums.get((chat.chat_id, reply_id), shown)
        album = with_item(current, outcome.post_id, outcome.reply)
        if album is None:
            return outcome.reply
        meme = self._by_post.get(outcome.post_id)
        self.remember(chat, reply_id, meme.meme_id if meme else reply_id, album)
        return album

    async def correction(self, chat: ChatRef, meme_id: str,
                         outcome: CorrectionOutcome | None) -> None:
        """A reaction changed a label: edit the item's line in its album reply, or (not an
        album item, or an album older than this process) as `Delivery.correction` does."""
        shown = (self._by_post.get(outcome.post_id)
                 if outcome is not None and outcome.post_id is not None else None)
        if outcome is None or outcome.reply is None or shown is None:
            await self.delivery.correction(chat, meme_id, outcome)
            return
        current = self._albums.get((shown.chat_id, shown.message_id))
        album = with_item(current, outcome.post_id or 0, outcome.reply) if current else None
        if album is not None and await self.delivery.port.edit(chat, shown.message_id, album):
            self.remember(chat, shown.message_id, shown.meme_id, album)
            return
        await self.delivery.correction(chat, meme_id, outcome)
