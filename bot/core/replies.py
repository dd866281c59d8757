"""Which bot reply belongs to which meme, so a correction can edit the reply and a reaction
on the reply counts as a reaction on the meme (ids as the core's `ChatRef` has them). Kept in
memory only: after a restart an older meme's correction
is answered with a new reply instead of an edit."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class SentReply:
    chat_id: str
    message_id: str
    meme_message_id: str


class ReplyIndex:
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._by_post: OrderedDict[int, SentReply] = OrderedDict()
        self._by_reply: dict[tuple[str, str], str] = {}

    def remember(self, post_id: int, sent: SentReply) -> None:
        old = self._by_post.pop(post_id, None)
        if old is not None:
            self._by_reply.pop((old.chat_id, old.message_id), None)
        self._by_post[post_id] = sent
        self._by_reply[(sent.chat_id, sent.message_id)] = sent.meme_message_id
        while len(self._by_post) > self._capacity:
            _, dropped = self._by_post.popitem(last=False)
            self._by_reply.pop((dropped.chat_id, dropped.message_id), None)

    def reply_for(self, post_id: int) -> SentReply | None:
        return self._by_post.get(post_id)

    def meme_for_reply(self, chat_id: str, message_id: str) -> str | None:
        return self._by_reply.get((chat_id, message_id))

    def move_chat(self, old_chat_id: str, new_chat_id: str) -> int:
        """A chat got a new id and kept its messages' ids (a Telegram supergroup, as storage
        moves its posts): its replies are found under the new id. Returns how many moved."""
        moved = 0
        for post_id, sent in list(self._by_post.items()):
            if sent.chat_id == old_chat_id:
                self._by_reply.pop((old_chat_id, sent.message_id), None)
                self._by_post[post_id] = SentReply(new_chat_id, sent.message_id,
                                                   sent.meme_message_id)
                self._by_reply[(new_chat_id, sent.message_id)] = sent.meme_message_id
                moved += 1
        return moved
