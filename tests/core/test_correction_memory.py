"""The correction memory through the core: an admin's correction counts at once for a close
image (new labels too), is shown as such, and is forgotten once a newer model serves."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from bot.core.messages import Actor, ChatRef, Command, ImagePost
from bot.core.outcomes import CommandStatus, CorrectionStatus
from bot.core.runtime import CoreRuntime
from bot.core.service import button_payload
from inference.fingerprint import embedding_space
from tests.support.fakes import FakeClassifier, colour_image, png

CHAT = ChatRef("telegram", "-100800")
ROOT = Actor("telegram", "1", "Root")
EVE = Actor("telegram", "66", "Eve")
GREY, RED = (128, 128, 128), (200, 20, 20)
_ids = itertools.count(1)


def post() -> ImagePost:
    return ImagePost(CHAT, str(next(_ids)), EVE, posted_at=datetime.now(UTC))


def shade(rgb: tuple[int, int, int], by: int) -> tuple[int, int, int]:
    r, g, b = rgb
    return r + by, g + by, b + by


async def test_a_correction_labels_a_near_identical_image_at_once(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    await core.storage.add_label("genshin", added_by="telegram:1")
    first = await core.service.handle_upload(post(), png(colour_image(GREY, stripe=7)))
    assert first.label == "other" and first.post_id is not None
    fixed = await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "genshin"),
                                             None)
    assert fixed.status is CorrectionStatus.corrected
    # a close image (another shade of the same picture): the admin's label, said as such
    close = await core.service.handle_upload(post(), png(colour_image(shade(GREY, 2), stripe=7)))
    assert close.label == "genshin" and close.reply is not None
    assert close.reply.text == "Genshin (like a meme an admin labelled)"
    assert [b.text for b in close.reply.buttons if b.current] == ["✓ Genshin"]
    assert close.post is not None
    stored = await core.storage.predictions_for(close.post.id)
    assert [p.label for p in stored] == ["genshin"]
    # an unrelated image keeps the model's own label
    other = await core.service.handle_upload(post(), png(colour_image(GREY, stripe=2)))
    assert other.label == "other" and other.reply is not None
    assert "admin" not in other.reply.text
    # the admin confirms the model's label after all: the image is no correction any more
    undo = await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "other"),
                                            None)
    assert undo.status is CorrectionStatus.confirmed
    again = await core.service.handle_upload(post(), png(colour_image(shade(GREY, -2), stripe=7)))
    assert again.label == "other"


async def test_a_newer_model_starts_with_an_empty_memory(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    meme = await core.service.handle_upload(post(), png(colour_image(RED, stripe=9)))
    assert meme.label == "doom" and meme.post_id is not None
    await core.service.handle_button(CHAT, ROOT, button_payload(meme.post_id, "animal_crossing"),
                                     None)
    before = await core.service.handle_upload(post(), png(colour_image(shade(RED, 2), stripe=9)))
    assert before.label == "animal_crossing"
    # a retrain promoted after the correction has learned it: the memory is rebuilt without it
    current = core.models.current
    assert isinstance(current, FakeClassifier)
    core.models.swap(FakeClassifier(current.folder, version="fake-2"))
    after = await core.service.handle_upload(post(), png(colour_image(shade(RED, -2), stripe=9)))
    assert after.label == "doom" and after.prediction is not None
    assert after.prediction.model_version == "fake-2"


async def test_an_admins_yes_to_a_label_the_memory_gave_is_remembered(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    await core.storage.add_label("genshin", added_by="telegram:1")
    first = await core.service.handle_upload(post(), png(colour_image(GREY, stripe=5)))
    assert first.post_id is not None
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "genshin"), None)
    close = await core.service.handle_upload(post(), png(colour_image(shade(GREY, 2), stripe=5)))
    assert close.label == "genshin" and close.post_id is not None  # the memory's label
    # the admin says yes to it (a confirmation: the post already shows genshin) ...
    yes = await core.service.handle_button(CHAT, ROOT, button_payload(close.post_id, "genshin"),
                                           None)
    assert yes.status is CorrectionStatus.confirmed
    # ... and takes the first image's correction back: the confirmed image still counts
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "other"), None)
    later = await core.service.handle_upload(post(), png(colour_image(shade(GREY, 3), stripe=5)))
    assert later.label == "genshin"


KNOWN_WORDS = ["rip and tear until it is done", "the demons of hell fear the slayer",
               "blathers loves fossils and bugs", "tom nook wants more bells today",
               "praise the bfg and the super shotgun", "isabelle reads the island news"]


def worded(caption: str | None) -> ImagePost:
    return ImagePost(CHAT, str(next(_ids)), EVE, posted_at=datetime.now(UTC), caption=caption)


async def test_close_words_take_a_corrected_memes_label(core: CoreRuntime) -> None:
    """Two text screenshots look nothing alike to the image model, but their words are close:
    the words' memory gives the admin's label; without words nothing changes."""
    current = core.models.current
    assert isinstance(current, FakeClassifier)
    core.models.swap(FakeClassifier(current.folder, version="fake-words",
                                    known_words=KNOWN_WORDS))
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    await core.storage.add_label("programming", added_by="telegram:1")
    caption = "when the python code compiles but the tests fail again"
    first = await core.service.handle_upload(worded(caption), png(colour_image(RED, stripe=3)))
    assert first.label == "doom" and first.post_id is not None
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "programming"),
                                     None)
    # another picture (the image memory finds nothing), words close to the corrected one's
    close = await core.service.handle_upload(
        worded("when the python code compiles but the tests fail"),
        png(colour_image(RED, stripe=8)))
    assert close.label == "programming" and close.reply is not None
    assert close.reply.text == "Programming (like a meme an admin labelled)"
    # the same picture without words, and with words of a game meme: the model's label
    bare = await core.service.handle_upload(worded(None), png(colour_image(RED, stripe=8)))
    assert bare.label == "doom"
    game = await core.service.handle_upload(worded("rip and tear until it is done"),
                                            png(colour_image(RED, stripe=8)))
    assert game.label == "doom"


async def test_a_model_without_a_words_bank_has_no_words_memory(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    caption = "when the python code compiles but the tests fail again"
    first = await core.service.handle_upload(worded(caption), png(colour_image(RED, stripe=3)))
    assert first.post_id is not None
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "other"), None)
    close = await core.service.handle_upload(worded(caption), png(colour_image(RED, stripe=8)))
    assert close.label == "doom"


async def test_an_admins_yes_to_a_model_label_the_memory_gave_is_remembered(
    core: CoreRuntime,
) -> None:
    """The memory says "other" where the model says doom (a label the model can give too):
    the admin's yes to it counts like a correction, so it outlives the first correction."""
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    first = await core.service.handle_upload(post(), png(colour_image(RED, stripe=4)))
    assert first.label == "doom" and first.post is not None and first.post_id is not None
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "other"), None)
    close = await core.service.handle_upload(post(), png(colour_image(shade(RED, 2), stripe=4)))
    assert close.label == "other" and close.post is not None  # the memory's label
    assert close.post_id is not None
    yes = await core.service.handle_button(CHAT, ROOT, button_payload(close.post_id, "other"),
                                           None)
    assert yes.status is CorrectionStatus.confirmed
    # the first correction taken back: the confirmed image still teaches the memory
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "doom"), None)
    later = await core.service.handle_upload(post(), png(colour_image(shade(RED, 3), stripe=4)))
    assert later.label == "other"
    # a yes to the model's own label is remembered too (it holds its neighbours to that label)
    own = await core.service.handle_upload(post(), png(colour_image(GREY, stripe=11)))
    assert own.post is not None and own.label is not None and not own.remembered
    await core.service.handle_button(CHAT, ROOT, button_payload(own.post.id, own.label), None)
    remembered = await core.storage.labelled_embeddings(embedding_space(core.models.current.meta))
    assert {r.sha256: r.label for r in remembered} == {
        first.post.image.sha256: "doom", close.post.image.sha256: "other",
        own.post.image.sha256: own.label}


async def test_an_undone_correction_shows_the_memorys_label_as_such_again(
    core: CoreRuntime,
) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    await core.storage.add_label("genshin", added_by="telegram:1")
    first = await core.service.handle_upload(post(), png(colour_image(GREY, stripe=13)))
    assert first.post_id is not None and not first.remembered
    await core.service.handle_button(CHAT, ROOT, button_payload(first.post_id, "genshin"), None)
    close = await core.service.handle_upload(post(), png(colour_image(shade(GREY, 2), stripe=13)))
    assert close.remembered and close.post_id is not None
    fixed = await core.service.handle_button(
        CHAT, ROOT, button_payload(close.post_id, "animal_crossing"), None)
    assert fixed.reply is not None
    undone = await core.service.handle_button(CHAT, ROOT, fixed.reply.buttons[-1].payload, None)
    assert undone.status is CorrectionStatus.undone and undone.reply is not None
    assert undone.reply.text == "Genshin (like a meme an admin labelled)"


THEIRS = ChatRef("telegram", "-100801")  # a community the bot was added to: not trusted
OURS = ChatRef("telegram", "-100802")
MALLORY = Actor("telegram", "77", "Mallory")  # THEIRS's admin


async def is_admin() -> bool:
    return True


def post_in(chat: ChatRef) -> ImagePost:
    return ImagePost(chat, str(next(_ids)), EVE, posted_at=datetime.now(UTC))


async def test_a_chat_not_trusted_teaches_the_memory_for_itself_only(core: CoreRuntime) -> None:
    """One bot, many communities: a correction in a chat that is not trusted labels that chat's
    close memes at once, never another community's, until an operator trusts the chat; an undo
    is forgotten at once."""
    for chat in (THEIRS, OURS):
        await core.storage.update_chat_settings(chat.platform, chat.chat_id, repost_mode="off")
    first = await core.service.handle_upload(post_in(THEIRS), png(colour_image(RED, stripe=6)))
    assert first.label == "doom" and first.post_id is not None
    fixed = await core.service.handle_button(
        THEIRS, MALLORY, button_payload(first.post_id, "animal_crossing"), is_admin)
    assert fixed.status is CorrectionStatus.corrected and fixed.reply is not None
    own = await core.service.handle_upload(post_in(THEIRS),
                                           png(colour_image(shade(RED, 2), stripe=6)))
    assert own.label == "animal_crossing" and own.remembered
    elsewhere = await core.service.handle_upload(post_in(OURS),
                                                 png(colour_image(shade(RED, 2), stripe=6)))
    assert elsewhere.label == "doom" and not elsewhere.remembered
    # an operator trusts the chat: its decisions count everywhere from the next meme on
    trusted = await core.service.handle_command(
        Command(THEIRS, ROOT, "trust", (), message_id="9"), is_admin)
    assert trusted is not None and trusted.status is CommandStatus.done
    now = await core.service.handle_upload(post_in(OURS),
                                           png(colour_image(shade(RED, -2), stripe=6)))
    assert now.label == "animal_crossing" and now.remembered
    # the correction undone: forgotten at once, here and there
    undone = await core.service.handle_button(THEIRS, MALLORY, fixed.reply.buttons[-1].payload,
                                              is_admin)
    assert undone.status is CorrectionStatus.undone
    after = await core.service.handle_upload(post_in(OURS),
                                             png(colour_image(shade(RED, 3), stripe=6)))
    assert after.label == "doom"
