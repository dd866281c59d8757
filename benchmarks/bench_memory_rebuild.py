"""What the correction memory costs as admins' decisions pile up between retrains (issue 24):
the bot rebuilds it after every admin action and at least once a minute (bot/core/recall.py),
from `Storage.labelled_embeddings`, and asks it once per meme.

For N decisions (a third of them in chats that are not trusted, so they count in their own
chat only; half the images with a words' vector), on SQLite in a temp folder:
- rebuild: the storage query + unpacking + `ChatMemories.of`, as `CorrectionRecall._build`;
- ask: one `ChatMemories.nearest` for a new meme close to a remembered one (image space; the
  costly case, where the bank of 1,400 known memes, as the served model's, is compared too).

    .venv/bin/python benchmarks/bench_memory_rebuild.py [--sizes 100,1000,3000]

Filling takes a while (each decision is a post, a prediction, a fingerprint and a correction,
each its own transaction, as in the bot); only the rebuild and the ask are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_storage import _images

from bot.core.recall import ChatMemories
from inference.correction_memory import CorrectionMemory
from inference.fingerprint import EMBEDDING_DIM, pack, unpack
from storage.api import Storage
from storage.records import Fingerprint

SPACE = "bench-space"
KNOWN = 1400  # about the served model's OOD bank
CHATS = ("-1001", "-1002", "-1003")  # the first trusted, the other two not
REPEATS = 5


def unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


async def fill(storage: Storage, n: int, rng: np.random.Generator) -> None:
    await storage.set_chat_trust("telegram", CHATS[0], "trusted", by="telegram:1")
    for i, image in enumerate(_images(n)):
        chat = CHATS[i % len(CHATS)]
        post = await storage.add_post(platform="telegram", chat_id=chat, message_id=i,
                                      author_id=7, image=image)
        prediction = await storage.record_prediction(
            post.id, model_version="v1", label="doom", confidence=0.9,
            probabilities={"doom": 0.9}, latency_ms=5.0)
        words = pack(unit(rng, 384), projected=False) if i % 2 else None
        image_vector = np.asarray(unit(rng, EMBEDDING_DIM), np.float16).tobytes()
        await storage.add_fingerprint(post.id, Fingerprint(i, i, image_vector, SPACE,
                                                           text_embedding=words),
                                      author_name="A")
        if i % 4 == 0:
            await storage.confirm_prediction(prediction.id, admin_id="telegram:2")
        else:
            await storage.record_correction(post.id, admin_id="telegram:2", label="other")


async def rebuild(storage: Storage, known: np.ndarray) -> tuple[ChatMemories, np.ndarray]:
    rows = await storage.labelled_embeddings(SPACE)
    vectors = unpack([r.embedding for r in rows])
    return ChatMemories.of([(r.sha256, r.label, r.chat, v)
                            for r, v in zip(rows, vectors, strict=True)],
                           lambda: CorrectionMemory(SPACE, known=known)), vectors


async def measure(n: int) -> tuple[int, int, float, float]:
    rng = np.random.default_rng(n)
    known = np.stack([unit(rng, EMBEDDING_DIM) for _ in range(KNOWN)])
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        storage = await Storage.open(f"sqlite+aiosqlite:///{tmp}/m.db", Path(tmp) / "blobs")
        try:
            await fill(storage, n, rng)
            builds = []
            for _ in range(REPEATS):
                t = time.perf_counter()
                memories, vectors = await rebuild(storage, known)
                builds.append(time.perf_counter() - t)
            # new memes close to remembered ones (the costly case: the known bank is asked too)
            near = vectors[rng.integers(0, len(vectors), 200)]
            near = near + 0.02 * rng.standard_normal(near.shape).astype(np.float32)
            queries = list(near / np.linalg.norm(near, axis=1, keepdims=True))
            t = time.perf_counter()
            for q in queries:
                memories.nearest(q, ("telegram", CHATS[1]))
            ask = (time.perf_counter() - t) / len(queries)
        finally:
            await storage.close()
    return len(memories), len(memories.chats), statistics.median(builds), ask


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,3000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| admin decisions since the model was trained | remembered (chats with their own) "
          "| rebuild, median of 5 | ask, per meme |\n|---|---|---|---|")
    for n in sizes:
        held, chats, build, ask = asyncio.run(measure(n))
        print(f"| {n:,} | {held:,} ({chats}) | {1000 * build:.1f} ms | {1000 * ask:.3f} ms |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
