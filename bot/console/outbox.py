"""`Outbox` for the console: a sorted meme lands in a tab of the console (its forward row is
the copy, listed by /api/sorted), announced to open pages; links open the meme's post."""

from __future__ import annotations

from bot.console.events import EventBus
from bot.core.messages import ChatRef, ForwardCopy, Reply


class ConsoleOutbox:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def link(self, chat: ChatRef, message_id: str) -> str | None:
        # Console uploads are named by their message id; other platforms' messages have
        # their own links, which only their adapters know.
        return f"/?message={message_id}" if chat.platform == "console" else None

    async def send_copy(self, copy: ForwardCopy) -> str:
        self.bus.publish("sorted", {"post_id": copy.post_id, "tab": copy.place,
                                    "label": copy.label, "text": copy.text})
        return f"tab-{copy.post_id}"

    async def delete_copy(self, chat: ChatRef, place: str, copy_id: str) -> bool:
        # The tab lists the post through its forward row, which the core re-points.
        self.bus.publish("unsorted", {"copy": copy_id, "tab": place})
        return True

    async def send_image(self, chat_id: str, reply: Reply) -> str | None:
        # The console's own chat shows every stored upload already: announce it again.
        if reply.post_id is None:
            return None
        self.bus.publish("posted", {"post_id": reply.post_id, "text": reply.text})
        return f"post-{reply.post_id}"
