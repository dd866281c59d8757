"""How the core's outcomes reach a chat, written once for every platform: the order of the
replies to a meme, a correction shown by editing the label reply (or answering anew), and a
retrain report fanned out to the admins who asked and the admins' chat.

Each adapter implements `ChatPort`, a handful of plain sends; the sequence lives here.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.core import offtopic
from bot.core.job_watcher import JobReport
from bot.core.messages import Actor, ChatRef, Outbox, Reply
from bot.core.outcomes import CorrectionOutcome, OffTopicAction, OffTopicVerdict, PostOutcome
from bot.core.replies import ReplyIndex, SentReply
from storage.api import Storage

log = logging.getLogger(__name__)


class ChatPort(Outbox, Protocol):
    """What the core asks of a platform. Each method reports failure by its result (and logs
    why); none raises for a refusal of the platform."""

    platform: str

    async def reply(self, chat: ChatRef, message_id: str, reply: Reply) -> str | None:
        """Answer a message; the answer's message id, or None when it could not be sent."""
        ...

    async def edit(self, chat: ChatRef, message_id: str, reply: Reply) -> bool:
        """Replace the text and buttons of one of the bot's messages."""
        ...

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        """Delete a message; False where the bot may not."""
        ...

    async def react(self, chat: ChatRef, message_id: str, emoji: str) -> bool:
        """Set the bot's reaction on a message (reaction mode); False where it cannot."""
        ...

    async def send(self, chat_id: str, reply: Reply, *, reply_to: str | None = None,
                   mention: Actor | None = None) -> str | None:
        """Post in a chat (by id: the admins' chat is known by id only), optionally as an
        answer to a message and addressed to someone; the new message's id, or None."""
        ...


class Delivery:
    """One per adapter: its port, its admins' chat, and which reply belongs to which meme."""

    def __init__(self, port: ChatPort, admin_chat: str | None,
                 storage: Storage | None = None) -> None:
        self.port = port
        self.admin_chat = admin_chat
        self.storage = storage  # where a held meme is recorded (without it nothing is held)
        self.replies = ReplyIndex()

    async def post_outcome(self, chat: ChatRef, meme_id: str, outcome: PostOutcome) -> bool:
        """Off-topic removal (hold or delete, where allowed) -> removed repost (delete mode,
        where allowed) -> repost note -> label reply or reaction -> admin log. True when the
        meme's message was deleted."""
        port = self.port
        # Where it stays (no right to delete), its label reply already carries the note.
        if outcome.offtopic is not None and await self._remove_offtopic(chat, meme_id,
                                                                        outcome.offtopic):
            return True
        if outcome.removed_note is not None and await port.delete(chat, meme_id):
            await port.send(chat.chat_id, outcome.removed_note)
            return True
        if outcome.repost_note is not None:  # not remembered: corrections edit the label
            await port.reply(chat, meme_id, outcome.repost_note)
        if outcome.reply is not None:  # last: once it is there, the meme is fully answered
            sent = await port.reply(chat, meme_id, outcome.reply)
            self.remember(chat, meme_id, outcome.reply, sent)
        elif outcome.reaction is not None:
            await port.react(chat, meme_id, outcome.reaction)
        # The image with its buttons; the line alone where the image cannot be sent.
        if outcome.admin_log and self.admin_chat is not None and (
                outcome.admin_post is None
                or await port.send_image(self.admin_chat, outcome.admin_post) is None):
            await port.send(self.admin_chat, Reply(outcome.admin_log))
        return False

    async def _remove_offtopic(self, chat: ChatRef, meme_id: str, verdict: OffTopicVerdict
                               ) -> bool:
        """Hold or delete an off-topic meme; False (the caller notes it instead) where the bot
        may not delete it, or there is no admins' chat to hold it for."""
        hold = verdict.action is OffTopicAction.hold
        admin_post = verdict.admin_post
        if hold and (self.admin_chat is None or admin_post is None or self.storage is None):
            return False
        if not await self.port.delete(chat, meme_id):
            return False
        if self.storage is not None:
            await offtopic.removed(self.storage, chat, verdict)
        if (hold and admin_post is not None and self.admin_chat is not None
                and await self.port.send_image(self.admin_chat, admin_post) is None):
            log.warning("held post %s not shown in the admins' chat", verdict.post_id)
        await self.port.send(chat.chat_id, verdict.notice)
        return True

    def remember(self, chat: ChatRef, meme_id: str, reply: Reply, sent: str | None) -> None:
        """`sent` is the label reply to meme `meme_id`: a later correction edits it, and a
        reaction on it counts as one on the meme."""
        if sent is not None and reply.post_id is not None:
            self.replies.remember(reply.post_id, SentReply(chat.chat_id, sent, meme_id))

    def meme_for(self, chat: ChatRef, message_id: str) -> str:
        """The meme a message is about: itself, or the meme when it is the bot's label reply."""
        return self.replies.meme_for_reply(chat.chat_id, message_id) or message_id

    async def correction(self, chat: ChatRef, meme_id: str, outcome: CorrectionOutcome | None
                         ) -> None:
        """A reaction changed a label: edit the label reply, or answer the meme anew when the
        reply is older than this process."""
        if outcome is None or outcome.reply is None or outcome.post_id is None:
            return
        sent = self.replies.reply_for(outcome.post_id)
        if sent is not None and await self.port.edit(chat, sent.message_id, outcome.reply):
            return
        new = await self.port.reply(chat, meme_id, outcome.reply)
        self.remember(chat, meme_id, outcome.reply, new)

    async def job_report(self, report: JobReport) -> None:
        """Each admin of this platform who asked hears it as an answer in their chat; the
        admins' chat hears it once (an admin who asked there is answered there)."""
        told: set[str] = set()
        for request in report.requests:
            chat_id = request.chat.chat_id
            if request.chat.platform != self.port.platform:
                continue
            if chat_id == self.admin_chat and chat_id in told:
                continue
            sent = await self.port.send(chat_id, Reply(report.text),
                                        reply_to=request.message_id, mention=request.actor)
            if sent is not None:
                told.add(chat_id)
        if self.admin_chat is not None and self.admin_chat not in told:
            await self.port.send(self.admin_chat, Reply(report.text))
