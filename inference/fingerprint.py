"""What repost detection compares, computed from an image and the classifier's embedding.

- Perceptual hashes (imagehash's pHash and dHash, 64 bits each) of the picture with its
  uniform borders trimmed (letterboxing, and the white or black caption bars that reposters
  add), plus the pHash of its mirror image, so that a flipped copy is looked up too.
- A 16x16 grey thumbnail of the trimmed picture, to tell another meme made from the same
  template (the same picture, other words: most cells equal, a few very different) from a copy
  (every cell close, or, for a crop or an added bar, no cell aligned).
- The classifier's embedding, projected to `EMBEDDING_DIM` dimensions and stored as float16:
  a fixed random orthonormal projection keeps cosines (Johnson-Lindenstrauss) without a
  fitted artefact to ship, and cuts 1,280 float32 (5 KB) to 256 bytes an image.

Thresholds live in config.settings and were chosen with benchmarks/bench_reposts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import imagehash
import numpy as np
from PIL import Image, ImageOps

from inference.metadata import ModelMeta
from inference.ood import l2_normalize
from inference.preprocess import ImageSource, load_image

EMBEDDING_DIM = 128
HASH_BITS = 64
# A row or column belongs to a border (a bar, maybe with text in it) while this share of its
# pixels is within BORDER_TOLERANCE of the bar's colour or of the opposite extreme (the text:
# black on white, white on black); anti-aliased letter edges make up the rest.
BORDER_SHARE = 0.6
BORDER_TOLERANCE = 40
MAX_TRIM = 0.35
THUMB = 16
# Same template, other words: at least this share of thumbnail cells within CELL_CLOSE grey
# levels (the picture is the same and aligned) while some cell differs by CELL_WORDS or more
# (new words); measured with benchmarks/bench_reposts.py.
TEMPLATE_SHARE = 0.6
CELL_CLOSE = 12
CELL_WORDS = 40
# never trim more than this share of a side: a mostly white meme stays whole
BAR_DARK, BAR_LIGHT = 25, 230


@dataclass(frozen=True)
class ImageHashes:
    phash: int  # of the trimmed picture, unsigned 64-bit
    dhash: int
    mirror_phash: int  # of its mirror image (looked up, never stored)
    mirror_dhash: int
    thumbnail: bytes = b""  # THUMB x THUMB grey levels of the trimmed picture
    mirror_thumbnail: bytes = b""


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _as_int(h: imagehash.ImageHash) -> int:
    return int(str(h), 16)


def _border_rows(gray: np.ndarray) -> int:
    """How many rows from the top form a bar: starting with uniform near-white or near-black
    rows, maybe holding text, ending at a sharp edge before MAX_TRIM of the height. A picture
    that is simply white at the top (no edge in reach) is left alone, so that trimming stays
    the same under resizing and re-encoding."""
    limit = int(gray.shape[0] * MAX_TRIM)
    colour = float(np.median(gray[0]))
    if BAR_DARK < colour < BAR_LIGHT:  # only white or black bars: a coloured scene is content
        return 0
    rows = gray[: limit + 3].astype(np.int16)
    bar = np.abs(rows - colour) <= BORDER_TOLERANCE
    text = np.abs(rows - (255.0 - colour)) <= BORDER_TOLERANCE
    if bar[:3].mean(axis=1).min() < 0.97:
        return 0
    share = (bar | text).mean(axis=1)
    n = 0
    while n < limit and share[n] >= BORDER_SHARE:
        n += 1
    if n < 3 or n >= limit or share[n : n + 3].mean() > 0.5:
        return 0
    return n


def trim_borders(img: Image.Image) -> Image.Image:
    """The picture without a caption bar or letterbox band at the top or the bottom."""
    gray = np.asarray(img.convert("L"))
    if gray.shape[0] < 16 or gray.shape[1] < 16:
        return img
    top = _border_rows(gray)
    bottom = _border_rows(gray[::-1])
    if img.height - top - bottom < 16:
        return img
    return img.crop((0, top, img.width, img.height - bottom))


def image_hashes(source: ImageSource | Image.Image) -> ImageHashes:
    """Hashes of an image (bytes, path or PIL image); raises ImageError for a bad one."""
    img = load_image(source)
    core = trim_borders(img)
    mirror = ImageOps.mirror(core)
    return ImageHashes(
        phash=_as_int(imagehash.phash(core)),
        dhash=_as_int(imagehash.dhash(core)),
        mirror_phash=_as_int(imagehash.phash(mirror)),
        mirror_dhash=_as_int(imagehash.dhash(mirror)),
        thumbnail=_thumbnail(core),
        mirror_thumbnail=_thumbnail(mirror),
    )


def _thumbnail(img: Image.Image) -> bytes:
    return img.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX).tobytes()


def _relation(a: bytes, b: bytes) -> str | None:
    """"same" (every cell close), "words" (aligned, a few cells very different) or None."""
    if len(a) != THUMB * THUMB or len(b) != THUMB * THUMB:
        return None  # unknown: decide on hashes and embeddings alone
    x = np.frombuffer(a, dtype=np.uint8).astype(np.float32)
    y = np.frombuffer(b, dtype=np.uint8).astype(np.float32)
    diff = np.abs((x - x.mean()) - (y - y.mean()))  # brightness shifts are not words
    if (diff < CELL_CLOSE).mean() < TEMPLATE_SHARE:
        return None
    return "words" if diff.max() >= CELL_WORDS else "same"


def same_template(a: bytes, b: bytes, mirror_a: bytes = b"") -> bool:
    """True when thumbnail `a` (or its mirror image) shows the picture of `b` with other
    words, and neither is simply the same picture (a mostly flat picture compared with its
    mirror image can look like "other words")."""
    relations = [_relation(a, b)] + ([_relation(mirror_a, b)] if mirror_a else [])
    return "same" not in relations and "words" in relations


@lru_cache(maxsize=4)
def _projection(dim_in: int, dim_out: int = EMBEDDING_DIM) -> np.ndarray:
    # A fixed seed makes the projection the same in every process and release.
    rng = np.random.default_rng(20261201)
    q, _ = np.linalg.qr(rng.standard_normal((dim_in, dim_out)))
    return q.astype(np.float32)


def project(embedding: np.ndarray) -> np.ndarray:
    """Unit-length float32 vectors of EMBEDDING_DIM dimensions (one per row)."""
    vectors = np.atleast_2d(np.asarray(embedding, dtype=np.float32))
    if vectors.shape[1] > EMBEDDING_DIM:
        vectors = vectors @ _projection(vectors.shape[1])
    return l2_normalize(vectors)


def pack(embedding: np.ndarray, *, projected: bool = True) -> bytes:
    """One embedding as stored: projected (unless not `projected`: a sentence vector keeps its
    384 dimensions, as its rule was measured), unit length, float16."""
    if projected:
        return np.asarray(project(embedding)[0], np.float16).tobytes()
    vector = np.asarray(embedding, np.float32).reshape(1, -1)
    return np.asarray(l2_normalize(vector)[0], np.float16).tobytes()


def unpack(blobs: list[bytes]) -> np.ndarray:
    """Stored embeddings as a float32 matrix, ready for an inner-product (cosine) index."""
    if not blobs:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1).astype(
        np.float32
    )


def embedding_space(meta: ModelMeta) -> str:
    """Which embeddings are comparable: a frozen stock backbone gives the same vectors in every
    model version built on it; a fine-tuned one only within its own version."""
    size = meta.preprocess.get("input_size")
    if not meta.training.get("finetune_epochs"):
        return f"{meta.backbone}-{size}"[:64]
    return f"{meta.backbone}-{size}-{meta.version}"[:64]
