"""Repost detection: is a new post a copy of an earlier one in the same chat?

A candidate is an earlier post of the chat, within the chat's look-back window, whose perceptual
hash (or that of the new post's mirror image) differs in at most `hash_distance` bits, or whose
embedding has a cosine of at least `checked_cosine` with the new one (crops and re-captions move
the hash but barely the embedding). Hash candidates come from storage's indexed hash quarters;
embedding neighbours from one faiss index per chat, held in memory and topped up from storage
with whatever any process stored since (so several bot processes agree).

A candidate is a copy when the two pictures, aligned by their keypoints, differ by nothing but
edits (inference/matching.py: this rejects one template with other words, screenshots of one
app's text posts, a game menu in another state). Where that cannot tell (a picture too flat for
keypoints, a clip, an image no longer on disk), the hash or a cosine of `cosine` decides alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import faiss
import numpy as np

from inference.errors import ImageError
from inference.fingerprint import (
    EMBEDDING_DIM,
    ImageHashes,
    hamming,
    project,
    same_template,
    unpack,
)
from inference.matching import Keypoints, NewPicture, keypoints, same_picture
from inference.preprocess import load_image
from storage.api import Storage
from storage.errors import NotFoundError
from storage.records import RepostMarkKind, StoredFingerprint

log = logging.getLogger(__name__)

NEIGHBOURS = 16  # embedding neighbours looked at: more than enough copies of one meme
SYNC_BATCH = 50_000
# One query at a time needs no OpenMP team: on a small shared host its spinning threads cost
# more than they give (a 100k search: 59 ms with 2 threads, 24 ms with 1, under load).
SEARCH_THREADS = 1
# Up to IVF_FROM embeddings a chat is searched exactly (flat); beyond, an inverted-file index
# (k-means cells, trained once on the chat's own vectors) scans NPROBE of its cells: a million
# vectors cost a few milliseconds instead of a full scan, and a near-copy (cosine >= 0.85)
# lands in one of the nearest cells.
IVF_FROM = 50_000
IVF_TRAIN = 65_536  # vectors the cells are trained on
NPROBE = 16
MAX_CELLS = 1024  # at 1M vectors a search scans NPROBE/MAX_CELLS = 1.6% of them
KMEANS_ITERATIONS = 10
# At most this many candidates of one post are compared picture to picture (earliest first);
# the rest are judged by hash and `cosine` alone. A meme reposted often has that many copies.
MAX_PICTURE_CHECKS = 8


@dataclass(frozen=True)
class RepostThresholds:
    hash_distance: int = 8
    cosine: float = 0.90  # a copy by embedding alone, when the pictures cannot be compared
    checked_cosine: float = 0.80  # a candidate whose picture is compared


@dataclass(frozen=True)
class RepostMatch:
    original: StoredFingerprint
    hash_distance: int | None  # None: found by its embedding only
    cosine: float | None


class ChatEmbeddings:
    """One chat's embeddings of one embedding space in a faiss inner-product index (cosine,
    the vectors being unit length), keyed by post id."""

    def __init__(self, storage: Storage, platform: str, chat_id: str, space: str) -> None:
        faiss.omp_set_num_threads(SEARCH_THREADS)
        self._storage = storage
        self._key = (platform, chat_id, space)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(EMBEDDING_DIM))
        self._last_post = 0
        self._is_ivf = False
        self._lock = asyncio.Lock()

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def last_post(self) -> int:
        """The newest post id the index holds: a caller fetches what came after it."""
        return self._last_post

    async def _add(self, rows: list[tuple[int, bytes]]) -> None:
        rows = [(post_id, blob) for post_id, blob in rows if post_id > self._last_post]
        if rows:
            ids = np.fromiter((post_id for post_id, _ in rows), dtype=np.int64)
            vectors = unpack([blob for _, blob in rows])
            await asyncio.to_thread(self._index.add_with_ids, vectors, ids)
            self._last_post = int(ids[-1])

    async def _catch_up(self, fetched: list[tuple[int, bytes]] | None) -> None:
        """Add `fetched` (the rows after `last_post`, read by the caller), then read on while
        a batch came back full."""
        platform, chat_id, space = self._key
        rows = fetched
        while True:
            if rows is None:
                rows = await self._storage.embeddings_after(
                    platform, chat_id, space, self._last_post, limit=SYNC_BATCH
                )
            await self._add(rows)
            if len(rows) < SYNC_BATCH:
                break
            rows = None
        if self._index.ntotal >= IVF_FROM and not self._is_ivf:
            self._index = await asyncio.to_thread(_to_ivf, self._index)
            self._is_ivf = True

    async def sync(self) -> None:
        async with self._lock:
            await self._catch_up(None)

    async def search(self, vector: np.ndarray, k: int = NEIGHBOURS,
                     fetched: list[tuple[int, bytes]] | None = None) -> list[tuple[int, float]]:
        """(post id, cosine) of the nearest stored embeddings, nearest first. `fetched`: the
        rows stored after `last_post`, when the caller read them already."""
        async with self._lock:
            await self._catch_up(fetched)
            if self._index.ntotal == 0:
                return []
            query = project(vector)
            scores, ids = await asyncio.to_thread(self._index.search, query, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def _to_ivf(flat: faiss.IndexIDMap2) -> faiss.IndexIDMap2:
    """The same vectors and ids in an inverted-file index (cells ~ 4 * sqrt(n), at most
    MAX_CELLS)."""
    n = int(flat.ntotal)
    vectors = faiss.downcast_index(flat.index).reconstruct_n(0, n)
    ids = faiss.vector_to_array(flat.id_map).astype(np.int64)
    cells = min(int(4 * np.sqrt(n)), MAX_CELLS)
    quantizer = faiss.IndexFlatIP(EMBEDDING_DIM)
    ivf = faiss.IndexIVFFlat(quantizer, EMBEDDING_DIM, cells, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = KMEANS_ITERATIONS  # rough cells are enough: NPROBE of them are scanned
    sample = np.random.default_rng(0).choice(n, size=min(n, IVF_TRAIN), replace=False)
    ivf.train(vectors[np.sort(sample)])
    ivf.nprobe = NPROBE
    index = faiss.IndexIDMap2(ivf)
    index.add_with_ids(vectors, ids)
    return index


class EmbeddingIndexes:
    """The in-memory indexes of the most recently active chats (least recently used dropped)."""

    def __init__(self, storage: Storage, capacity: int = 64) -> None:
        self._storage = storage
        self._capacity = capacity
        self._chats: OrderedDict[tuple[str, str, str], ChatEmbeddings] = OrderedDict()

    def for_chat(self, platform: str, chat_id: str, space: str) -> ChatEmbeddings:
        key = (platform, chat_id, space)
        index = self._chats.pop(key, None) or ChatEmbeddings(self._storage, *key)
        self._chats[key] = index
        while len(self._chats) > self._capacity:
            self._chats.popitem(last=False)
        return index


class RepostDetector:
    def __init__(self, storage: Storage, thresholds: RepostThresholds) -> None:
        self.storage = storage
        self.thresholds = thresholds
        self.indexes = EmbeddingIndexes(storage)

    async def find_original(
        self,
        platform: str,
        chat_id: str,
        hashes: ImageHashes,
        embedding: tuple[np.ndarray, str] | None,
        since: datetime | None,
        picture: NewPicture | None = None,
    ) -> RepostMatch | None:
        """The earliest stored post of the chat that a new (not yet stored) post copies,
        honouring the admins' marks. One read on the usual path (no match). `picture`: the
        new post's image, compared with the candidates' (without it: hash and `cosine`)."""
        limit = self.thresholds
        wanted = (hashes.phash, hashes.mirror_phash)
        index = self.indexes.for_chat(platform, chat_id, embedding[1]) if embedding else None
        candidates = await self.storage.repost_candidates(
            platform, chat_id, wanted, since=since, space=embedding[1] if embedding else None,
            embeddings_after=index.last_post if index else 0, limit=SYNC_BATCH,
        )
        by_hash: dict[int, tuple[StoredFingerprint, int]] = {}
        for fp in candidates.by_hash:  # a clip has a row per fingerprinted frame: the closest
            distance = min(hamming(fp.phash, h) for h in wanted)
            known = by_hash.get(fp.post_id)
            if distance <= limit.hash_distance and (known is None or distance < known[1]):
                by_hash[fp.post_id] = (fp, distance)
        by_cosine: dict[int, float] = {}
        if index is not None and embedding is not None:
            found_near = await index.search(embedding[0], fetched=candidates.new_embeddings)
            # Nearest last, so that a clip's nearest frame gives its cosine.
            least = min(limit.cosine, limit.checked_cosine) if picture else limit.cosine
            by_cosine = {pid: score for pid, score in reversed(found_near) if score >= least}
        return await self._earliest(hashes, by_hash, by_cosine, since, picture)

    async def _earliest(
        self, hashes: ImageHashes, by_hash: dict[int, tuple[StoredFingerprint, int]],
        by_cosine: dict[int, float], since: datetime | None, picture: NewPicture | None,
    ) -> RepostMatch | None:
        found = {pid: fp for pid, (fp, _) in by_hash.items()}
        extra = [pid for pid in by_cosine if pid not in found]
        for fp in await self.storage.fingerprints(extra) if extra else []:
            if since is None or fp.posted_at >= since:
                found[fp.post_id] = fp
        # Another meme made from the same picture (other words) is no copy. Once one earlier
        # post shows the same picture with other words, embeddings cannot tell this meme from
        # that post's copies (crops of it, say): only hash matches still count.
        template = {
            pid for pid, fp in found.items()
            if fp.thumbnail
            and same_template(hashes.thumbnail, fp.thumbnail, hashes.mirror_thumbnail)
        }
        found = {
            pid: fp for pid, fp in found.items()
            if pid not in template and (not template or pid in by_hash)
        }
        found = await self._copies(found, by_hash, by_cosine, picture)
        if not found:
            return None
        for mark in await self.storage.repost_marks(list(found)):
            if mark.kind is RepostMarkKind.exempt:
                return None  # a copy of an image the admins exempted
            # The new post copies a post the admins called "not a repost" of its original:
            # that original is not what this one copies.
            if mark.original_post_id is not None:
                found.pop(mark.original_post_id, None)
        if not found:
            return None
        first = min(found.values(), key=_age)
        hashed = by_hash.get(first.post_id)
        return RepostMatch(
            original=first,
            hash_distance=hashed[1] if hashed else None,
            cosine=by_cosine.get(first.post_id),
        )

    async def _copies(
        self, found: dict[int, StoredFingerprint],
        by_hash: dict[int, tuple[StoredFingerprint, int]], by_cosine: dict[int, float],
        picture: NewPicture | None,
    ) -> dict[int, StoredFingerprint]:
        """The candidates that are copies: compared picture to picture (the earliest
        MAX_PICTURE_CHECKS), or, where that cannot tell, by hash or a cosine of `cosine`."""
        def alone(pid: int) -> bool:
            return pid in by_hash or by_cosine.get(pid, -1.0) >= self.thresholds.cosine

        copies = {}
        for n, fp in enumerate(sorted(found.values(), key=_age)):
            verdict = None
            if picture is not None and n < MAX_PICTURE_CHECKS:
                old = await self._keypoints(fp.post_id)
                if old is not None:
                    try:
                        verdict = await asyncio.to_thread(same_picture, picture, old)
                    except ImageError as exc:  # classified already, so hardly ever
                        log.warning("the new picture cannot be compared: %s", exc)
                        picture = None
            if verdict or (verdict is None and alone(fp.post_id)):
                copies[fp.post_id] = fp
        return copies

    async def _keypoints(self, post_id: int) -> Keypoints | None:
        """The keypoints of a stored still's image; None for a clip or an image gone from disk
        (judged by hash and embedding then)."""
        try:
            post = await self.storage.get_post(post_id)
        except NotFoundError:  # deleted meanwhile
            return None
        if post.media_kind != "still":
            return None
        try:
            return await asyncio.to_thread(lambda: keypoints(load_image(post.image.path)))
        except (ImageError, OSError) as exc:
            log.warning("post %s: its image cannot be compared: %s", post_id, exc)
            return None


def _age(fp: StoredFingerprint) -> tuple[datetime, int]:
    return fp.posted_at, fp.post_id
