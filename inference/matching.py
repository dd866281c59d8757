"""Is a repost candidate the same picture? Local features aligned, then compared cell by cell.

Hashes and embeddings find candidates but cannot tell a copy from another meme on the same
picture: one template with other words, two screenshots of one app's text posts, one game menu
in another state. Here ORB keypoints of both images are matched and an affine map (scale,
stretch, shift, so resized, stretched, cropped and captioned copies; the mirror image is tried
too) is fitted with RANSAC; the earlier image is warped onto the new one and both are blurred
and compared in a grid of cells over their overlap. A copy differs a little everywhere
(resampling, JPEG); other words make a few cells very different. Measured with
benchmarks/bench_reposts.py (README, "Reposts and sorting").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from types import ModuleType

import numpy as np
from PIL import Image, ImageOps

from inference.preprocess import ImageSource, load_image

SIDE = 480  # both images are compared at this longer side (320: small words slip through)
FEATURES = 500
FAST_THRESHOLD = 10  # lower than ORB's default 20: meme pictures are often flat
MIN_KEYPOINTS = 40  # fewer on either side: the pictures are too flat to tell (undecided)
RATIO = 0.8  # Lowe's ratio test on the two nearest descriptors
MIN_INLIERS = 15  # fewer points agree on one map: not the same picture
RANSAC_PIXELS = 4.0
GRID = 24  # cells along each side of the new image (20 x 20 pixels at most: about a word)
MIN_CELLS = GRID * GRID // 4  # the earlier image covers fewer whole cells: no copy
BLUR_SIGMA = 2.0  # pixels at SIDE: resampling and JPEG blocks fade, letters stay
SHIFT = 2  # pixels each way a cell may move to meet its match
CELL_DIFFERENT = 30.0  # mean grey difference of a cell holding other words
MAX_DIFFERENT_SHARE = 0.005  # a copy has fewer such cells than this (3 of 576 cells)



@cache
def _cv2() -> ModuleType:
    """OpenCV, loaded at the first comparison: 16 MB resident that a bot whose chats never
    see a repost candidate does not carry."""
    import cv2

    # One comparison at a time needs no thread team (the bot runs it in a worker thread).
    cv2.setNumThreads(1)
    return cv2


@dataclass(frozen=True)
class Keypoints:
    """One image as compared: its grey picture at SIDE and its ORB keypoints."""

    grey: np.ndarray
    points: np.ndarray  # (n, 2) float32 pixel positions in `grey`
    descriptors: np.ndarray | None  # (n, 32) uint8, None without keypoints


def keypoints(img: Image.Image) -> Keypoints:
    cv2 = _cv2()
    grey = np.asarray(img.convert("L"))
    scale = SIDE / max(grey.shape)
    size = (max(8, round(grey.shape[1] * scale)), max(8, round(grey.shape[0] * scale)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    orb = cv2.ORB.create(nfeatures=FEATURES, fastThreshold=FAST_THRESHOLD)
    found, descriptors = orb.detectAndCompute(grey, None)
    points = np.array([k.pt for k in found], dtype=np.float32).reshape(-1, 2)
    return Keypoints(grey, points, descriptors)


def _align(new: Keypoints, old: Keypoints) -> tuple[np.ndarray | None, int]:
    """The affine map of `old`'s pixels onto `new`'s and how many matches agree with it."""
    cv2 = _cv2()
    if new.descriptors is None or old.descriptors is None:
        return None, 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(old.descriptors, new.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None, len(good)
    src = old.points[[m.queryIdx for m in good]]
    dst = new.points[[m.trainIdx for m in good]]
    matrix, inliers = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC,
                                           ransacReprojThreshold=RANSAC_PIXELS)
    if matrix is None:
        return None, 0
    return matrix, int(inliers.sum())


def cell_differences(new: Keypoints, old: Keypoints, matrix: np.ndarray) -> np.ndarray:
    """Mean grey difference of each GRID cell of `new` that `old`, warped by `matrix`,
    covers whole; each cell at the best of small shifts (SHIFT pixels each way), so that an
    alignment a pixel off does not look like other words."""
    cv2 = _cv2()
    h, w = new.grey.shape
    warped = cv2.warpAffine(old.grey, matrix, (w, h), flags=cv2.INTER_AREA, borderValue=0)
    covered = cv2.warpAffine(np.full(old.grey.shape, 255, np.uint8), matrix, (w, h),
                             flags=cv2.INTER_NEAREST, borderValue=0)
    a = cv2.GaussianBlur(new.grey.astype(np.float32), (0, 0), BLUR_SIGMA)
    b = cv2.GaussianBlur(warped.astype(np.float32), (0, 0), BLUR_SIGMA)
    b = cv2.copyMakeBorder(b, SHIFT, SHIFT, SHIFT, SHIFT, cv2.BORDER_REPLICATE)
    ch, cw = max(1, h // GRID), max(1, w // GRID)
    rows, cols = h // ch, w // cw
    best = None
    for dy in range(2 * SHIFT + 1):
        for dx in range(2 * SHIFT + 1):
            diff = np.abs(a - b[dy : dy + h, dx : dx + w])[: rows * ch, : cols * cw]
            cells = diff.reshape(rows, ch, cols, cw).mean(axis=(1, 3))
            best = cells if best is None else np.minimum(best, cells)
    assert best is not None
    whole = covered[: rows * ch, : cols * cw].reshape(rows, ch, cols, cw).min(axis=(1, 3))
    out: np.ndarray = best[whole == 255].astype(np.float32)
    return out


class NewPicture:
    """A new post's picture, decoded and its keypoints found when first compared (most posts
    have no candidate), its mirror image's only when a direct comparison finds no copy."""

    def __init__(self, source: ImageSource) -> None:
        self._source = source

    @cached_property
    def _image(self) -> Image.Image:
        return load_image(self._source)

    @cached_property
    def direct(self) -> Keypoints:
        return keypoints(self._image)

    @cached_property
    def mirror(self) -> Keypoints:
        return keypoints(ImageOps.mirror(self._image))


def same_picture(new: NewPicture, old: Keypoints) -> bool | None:
    """True when `new` (or its mirror image) shows `old`'s picture with nothing but edits
    (resized, stretched, re-encoded, cropped, a bar added); False for another picture or the
    same one with other words; None when either is too flat to tell."""
    if len(new.direct.points) < MIN_KEYPOINTS or len(old.points) < MIN_KEYPOINTS:
        return None
    # A mirrored copy can still align a few symmetric shapes directly: the mirror image is
    # compared whenever the direct comparison finds no copy.
    return _same(new.direct, old) or _same(new.mirror, old)


def _same(new: Keypoints, old: Keypoints) -> bool:
    matrix, inliers = _align(new, old)
    if matrix is None or inliers < MIN_INLIERS:
        return False
    cells = cell_differences(new, old, matrix)
    if len(cells) < MIN_CELLS:
        return False
    return bool((cells >= CELL_DIFFERENT).mean() < MAX_DIFFERENT_SHARE)
