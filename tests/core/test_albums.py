"""One reply for an album (bot/core/albums.py): its numbered lines and buttons, a correction
edited into one item's line (from the message alone, or from memory for a reaction), and the
items' other answers (repost notes) delivered item by item."""

from __future__ import annotations

from bot.core import formatting as fmt
from bot.core.albums import AlbumDelivery, AlbumItem, album_reply, is_album, with_item
from bot.core.delivery import Delivery
from bot.core.messages import ChatRef, Reply
from bot.core.outcomes import CorrectionOutcome, CorrectionStatus, PostOutcome, PostStatus
from bot.core.service import label_buttons
from tests.support.fakes import MemoryPort

LABELS = ("doom", "animal_crossing", "other")
CHAT = ChatRef("telegram", "-100")


def labelled(post_id: int, label: str, text: str) -> PostOutcome:
    return PostOutcome(PostStatus.labelled, post_id,
                       reply=Reply(text, label_buttons(post_id, LABELS, label), post_id))


def corrected(post_id: int, label: str) -> CorrectionOutcome:
    reply = Reply(fmt.corrected_text(label, "@bob", confirmed=False),
                  label_buttons(post_id, LABELS, label), post_id)
    return CorrectionOutcome(CorrectionStatus.corrected, fmt.label_set_notice(label), reply,
                             post_id=post_id, changed=True, label=label)


ITEMS = [
    AlbumItem(1, "11", labelled(7, "doom", "Doom (91%)")),
    AlbumItem(2, "12", PostOutcome(PostStatus.unreadable, reason="corrupt image",
                                   reply=Reply(fmt.unreadable_text("photo", "corrupt image")))),
    AlbumItem(3, "13", labelled(9, "other", "other: not a Doom or Animal Crossing meme")),
    AlbumItem(4, "14", PostOutcome(PostStatus.disabled)),  # nothing to say about it
]


def test_an_album_reply_numbers_each_answered_item_and_its_buttons() -> None:
    album = album_reply(ITEMS)
    assert album is not None and is_album(album)
    assert album.text.split("\n") == [
        "1. Doom (91%)",
        "2. Sorry, I can't read this photo: corrupt image.",
        "3. other: not a Doom or Animal Crossing meme",
    ]
    assert [b.text for b in album.buttons] == [
        "1: ✓ Doom", "1: Animal Crossing", "1: Other",
        "3: Doom", "3: Animal Crossing", "3: ✓ Other",
    ]
    assert [b.payload for b in album.buttons][:3] == ["c:7:doom", "c:7:animal_crossing",
                                                      "c:7:other"]
    assert album_reply([ITEMS[3]]) is None
    assert not is_album(Reply("Doom (91%)", label_buttons(7, LABELS, "doom"), 7))


def test_a_correction_changes_its_items_line_and_buttons_only() -> None:
    album = album_reply(ITEMS)
    assert album is not None
    new = with_item(album, 9, corrected(9, "doom").reply)  # type: ignore[arg-type]
    assert new is not None
    assert new.text.split("\n") == [
        "1. Doom (91%)",
        "2. Sorry, I can't read this photo: corrupt image.",
        "3. Doom (set by @bob)",
    ]
    assert [b.text for b in new.buttons] == [
        "1: ✓ Doom", "1: Animal Crossing", "1: Other",
        "3: ✓ Doom", "3: Animal Crossing", "3: Other",
    ]
    assert with_item(album, 8, corrected(8, "doom").reply) is None  # type: ignore[arg-type]


async def test_album_delivery_sends_one_reply_and_edits_it_on_a_reaction() -> None:
    port = MemoryPort()
    albums = AlbumDelivery(Delivery(port, admin_chat=None))
    note = Reply("Repost: first posted by @carol on 2026-01-01")
    items = [*ITEMS[:2], AlbumItem(3, "13", PostOutcome(
        PostStatus.labelled, 9, reply=ITEMS[2].outcome.reply, repost_note=note))]
    await albums.album_outcome(CHAT, items)
    [repost, album] = port.sent
    assert (repost.reply, repost.reply_to) == (note, "13")  # the item's own note, to the item
    assert album.reply_to == "11" and album.reply.text.startswith("1. Doom (91%)\n2. ")
    await albums.correction(CHAT, "11", corrected(7, "animal_crossing"))
    [edit] = album.edits
    assert edit.text.split("\n")[0] == "1. Animal Crossing (set by @bob)"
    assert edit.text.split("\n")[2] == "3. other: not a Doom or Animal Crossing meme"
    assert len(port.sent) == 2  # edited, not answered anew
    # A press carries the album as shown: the next correction builds on the edited one.
    pressed = albums.pressed(CHAT, album.message_id, album.reply, corrected(9, "doom"))
    assert pressed is not None and pressed.text.split("\n") == [
        "1. Animal Crossing (set by @bob)",
        "2. Sorry, I can't read this photo: corrupt image.",
        "3. Doom (set by @bob)",
    ]
