"""The correction memory in the bot: admins' corrections count at once, before any retrain.

The memory (inference/correction_memory.py) holds the stored embeddings of the images admins
labelled (corrected or confirmed) since the serving model was trained; a new meme close enough
to one of them takes its label. It is rebuilt whenever the serving model changes (a promoted retrain has learned the
corrections made before it was trained, so only later ones are remembered), after an admin's
decision in this process, and at least every REFRESH_SECONDS for other processes' decisions.

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
from datetime import datetime

from bot.core.model_holder import ModelHolder
from inference.classifier import Classifier, Prediction
from inference.correction_memory import WORDS_RULE, CorrectionMemory, Remembered
from inference.fingerprint import embedding_space, unpack
from storage.api import Storage

log = logging.getLogger(__name__)


# Corrections stored by another process (a console of its own, another bot) count after at
# most this long: one query a minute, not one a meme.
REFRESH_SECONDS = 60.0


class CorrectionRecall:
    def __init__(self, storage: Storage, models: ModelHolder) -> None:
        self.storage = storage
        self.models = models
        self._memory: CorrectionMemory | None = None
        self._words: CorrectionMemory | None = None
        self._version: str | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()

    async def _memories(self) -> tuple[CorrectionMemory, CorrectionMemory | None]:
        """The image memory and the words' one (None: the model has no bank of words) of the
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
                     ) -> tuple[CorrectionMemory, CorrectionMemory | None]:
        meta = classifier.meta
        space = embedding_space(meta)
        scorer = getattr(classifier, "ood", None)  # the model's bank of the memes it knows
        memory = CorrectionMemory(space, known=scorer.bank if scorer is not None else None)
        text_model = getattr(classifier, "text_model", None)
        bank = text_model.bank if text_model is not None else None
        words = (CorrectionMemory(text_model.encoder_name, known=bank, rule=WORDS_RULE)
                 if text_model is not None and bank is not None and len(bank) else None)
        trained_at = datetime.fromisoformat(meta.created_at)
        rows = await self.storage.labelled_embeddings(space, since=trained_at)
        if rows:
            vectors = unpack([r.embedding for r in rows])
            memory.replace((r.sha256, r.label, v) for r, v in zip(rows, vectors, strict=True))
        worded = [r for r in rows if r.text_embedding is not None]
        if words is not None and worded:
            texts = unpack([r.text_embedding for r in worded if r.text_embedding is not None])
            words.replace((r.sha256, r.label, v) for r, v in zip(worded, texts, strict=True))
        log.debug("correction memory for model %s: %d image(s) labelled since it was trained, "
                  "%d with words", meta.version, len(memory), len(words) if words else 0)
        return memory, words

    async def recall(self, prediction: Prediction) -> tuple[Prediction, Remembered | None]:
        """The prediction, relabelled when the image is close to one an admin labelled otherwise."""
        if prediction.embedding is None or prediction.model_version != self.models.current.version:
            return prediction, None
        memory, words = await self._memories()
        match = memory.nearest(prediction.embedding)
        if match is None and words is not None and prediction.text_embedding is not None:
            match = words.nearest(prediction.text_embedding)
        if match is None or match.label == prediction.label:
            return prediction, None
        return dataclasses.replace(prediction, label=match.label, confidence=match.cosine,
                                   is_ood=False), match

    def refresh(self) -> None:
        """An admin decided a label: the next meme sees the memory rebuilt (corrections are
        rare; the latest decision about an image wins, a confirmation after a correction
        removes it)."""
        self._memory = self._words = None
