"""The correction memory in the bot: admins' corrections count at once, before any retrain.

The memory (inference/correction_memory.py) holds the stored embeddings of the images admins
labelled (corrected or confirmed) since the serving model was trained; a new meme close enough
to one of them takes its label. It is rebuilt whenever the serving model changes (a promoted
retrain has learned the corrections made before it was trained, so only later ones are
remembered), after an admin's decision in this process, and at least every REFRESH_SECONDS
for other processes' decisions.

One bot serves many communities: a decision that may train (the training gate: a trusted
chat's, approved, an operator's) counts in every chat; any other counts only in the chat it was
made in, so a chat that is not trusted labels its own memes, never another community's.

A second memory holds the words' vectors of the same images (the sentence encoder's, of OCR +
caption) and is asked when the image memory finds nothing: text screenshots look alike to the
image model but not in their words. It needs the model's bank of its training memes' words
(inference/text.py TEXT_BANK_FILE); a model trained without one has no words' memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from bot.core.messages import ChatRef
from bot.core.model_holder import ModelHolder
from inference.classifier import Classifier, Prediction
from inference.correction_memory import WORDS_RULE, CorrectionMemory, Remembered
from inference.fingerprint import embedding_space, unpack
from storage.api import Storage

log = logging.getLogger(__name__)


# Corrections stored by another process (a console of its own, another bot) count after at
# most this long: one query a minute, not one a meme.
REFRESH_SECONDS = 60.0


ChatKey = tuple[str, str]  # (platform, chat id), as storage keeps them


@dataclasses.dataclass
class ChatMemories:
    """One space's memory of the decisions that count everywhere (they may train), and each
    chat's own memory of the decisions that count in that chat only."""

    shared: CorrectionMemory
    chats: dict[ChatKey, CorrectionMemory]

    @classmethod
    def of(cls, rows: Sequence[tuple[str, str, ChatKey | None, np.ndarray]],
           make: Callable[[], CorrectionMemory]) -> ChatMemories:
        """From (sha256, label, chat or None, vector) rows; every chat's memory shares the
        shared one's bank of known memes."""
        grouped: dict[ChatKey | None, list[tuple[str, str, np.ndarray]]] = {}
        for sha, label, chat, vector in rows:
            grouped.setdefault(chat, []).append((sha, label, vector))
        memories = cls(make(), {})
        for chat, items in grouped.items():
            memory = (memories.shared if chat is None
                      else memories.chats.setdefault(chat, memories.shared.sibling()))
            memory.replace(items)
        return memories

    def __len__(self) -> int:
        return len(self.shared) + sum(len(m) for m in self.chats.values())

    def nearest(self, vector: np.ndarray, chat: ChatKey) -> Remembered | None:
        """The closer of the chat's own match and the shared one (the chat's own on a tie)."""
        own = self.chats.get(chat)
        matches = [m for m in (own.nearest(vector) if own is not None else None,
                               self.shared.nearest(vector)) if m is not None]
        return max(matches, key=lambda m: m.cosine) if matches else None


class CorrectionRecall:
    def __init__(self, storage: Storage, models: ModelHolder) -> None:
        self.storage = storage
        self.models = models
        self._memory: ChatMemories | None = None
        self._words: ChatMemories | None = None
        self._version: str | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()

    async def _memories(self) -> tuple[ChatMemories, ChatMemories | None]:
        """The image memories and the words' ones (None: the model has no bank of words) of the
        serving model, rebuilt from storage when the model changed."""
        classifier = self.models.current
        async with self._lock:
            stale = time.monotonic() - self._built_at > REFRESH_SECONDS
            if self._memory is None or self._version != classifier.version or stale:
                self._memory, self._words = await self._build(classifier)
                self._version = classifier.version
                self._built_at = time.monotonic()
            return self._memory, self._words

    async def _build(self, classifier: Classifier
                     ) -> tuple[ChatMemories, ChatMemories | None]:
        meta = classifier.meta
        space = embedding_space(meta)
        scorer = getattr(classifier, "ood", None)  # the model's bank of the memes it knows
        known = scorer.bank if scorer is not None else None
        text_model = getattr(classifier, "text_model", None)
        bank = text_model.bank if text_model is not None else None
        trained_at = datetime.fromisoformat(meta.created_at)
        rows = await self.storage.labelled_embeddings(space, since=trained_at)
        vectors = unpack([r.embedding for r in rows])
        memory = ChatMemories.of(
            [(r.sha256, r.label, r.chat, v) for r, v in zip(rows, vectors, strict=True)],
            lambda: CorrectionMemory(space, known=known))
        words: ChatMemories | None = None
        if text_model is not None and bank is not None and len(bank):
            worded = [(r, r.text_embedding) for r in rows if r.text_embedding is not None]
            texts = unpack([blob for _, blob in worded])
            words = ChatMemories.of(
                [(r.sha256, r.label, r.chat, v) for (r, _), v in zip(worded, texts, strict=True)],
                lambda: CorrectionMemory(text_model.encoder_name, known=bank, rule=WORDS_RULE))
        log.debug("correction memory for model %s: %d image(s) labelled since it was trained "
                  "(%d chat(s) with their own), %d with words", meta.version, len(memory),
                  len(memory.chats), len(words) if words else 0)
        return memory, words

    async def recall(self, prediction: Prediction, chat: ChatRef
                     ) -> tuple[Prediction, Remembered | None]:
        """The prediction, relabelled when the image is close to one an admin labelled
        otherwise (in this chat, or in one whose decisions count everywhere)."""
        if prediction.embedding is None or prediction.model_version != self.models.current.version:
            return prediction, None
        memory, words = await self._memories()
        where = (chat.platform, str(chat.chat_id))
        match = memory.nearest(prediction.embedding, where)
        if match is None and words is not None and prediction.text_embedding is not None:
            match = words.nearest(prediction.text_embedding, where)
        if match is None or match.label == prediction.label:
            return prediction, None
        return dataclasses.replace(prediction, label=match.label, confidence=match.cosine,
                                   is_ood=False), match

    def refresh(self) -> None:
        """An admin decided or undid a label, or a chat's trust or a review changed where a
        decision counts: the next meme sees the memory rebuilt (such changes are rare; the
        latest decision about an image wins)."""
        self._memory = self._words = None
