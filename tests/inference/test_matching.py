"""Comparing two pictures (inference/matching.py): edited copies are the same picture; another
meme on the same picture, another text post of one app, a menu in another state are not; a flat
picture cannot be told."""

from __future__ import annotations

import pytest
from PIL import Image, ImageOps

from inference.matching import NewPicture, keypoints, same_picture
from tests.support.imagegen import (
    cropped,
    encode,
    menu_state,
    reencoded,
    resized,
    scene,
    stretched,
    text_screenshot,
    with_caption_bar,
    with_meme_text,
    words,
)

ORIGINAL = with_meme_text(scene(1), words(1, 3), words(2, 3))

COPIES = {
    "resized 0.5x": reencoded(resized(ORIGINAL, 0.5), "JPEG", 85),
    "resized 2x": reencoded(resized(ORIGINAL, 2.0), "JPEG", 85),
    "JPEG 40": reencoded(ORIGINAL, "JPEG", 40),
    "stretched 4:3": reencoded(stretched(ORIGINAL, 1.0, 0.75), "JPEG", 85),
    "stretched 3:4": reencoded(stretched(ORIGINAL, 0.75, 1.0), "JPEG", 85),
    "cropped 10%": cropped(ORIGINAL, 0.10, 3),
    "caption bar": reencoded(with_caption_bar(ORIGINAL, "me when the meme"), "JPEG", 85),
    "mirrored": ImageOps.mirror(ORIGINAL),
}


@pytest.mark.parametrize("kind", list(COPIES))
def test_an_edited_copy_is_the_same_picture(kind: str) -> None:
    assert same_picture(NewPicture(COPIES[kind]), keypoints(ORIGINAL)) is True


def pair(kind: str) -> tuple[Image.Image, Image.Image]:
    if kind == "same template, other words":
        return ORIGINAL, with_meme_text(scene(1), words(7, 3), words(8, 3))
    if kind == "text posts of one app":
        return text_screenshot("reddit", 10), text_screenshot("reddit", 11)
    if kind == "menu in another state":
        return menu_state(scene(2), 30, highlight=1), menu_state(scene(2), 40, highlight=4)
    if kind == "menu, other entries":
        return menu_state(scene(2), 30, highlight=1), menu_state(scene(2), 40, highlight=1)
    return ORIGINAL, scene(3)  # another picture


@pytest.mark.parametrize("kind", ["same template, other words", "text posts of one app",
                                  "menu in another state", "menu, other entries",
                                  "another picture"])
def test_a_hard_distinct_pair_is_not_the_same_picture(kind: str) -> None:
    old, new = pair(kind)
    assert same_picture(NewPicture(new), keypoints(old)) is False


def test_a_flat_picture_cannot_be_told() -> None:
    flat = Image.new("RGB", (300, 200), (120, 30, 30))
    assert same_picture(NewPicture(flat), keypoints(ORIGINAL)) is None
    assert same_picture(NewPicture(ORIGINAL), keypoints(flat)) is None


def test_the_new_picture_may_be_bytes() -> None:
    data = encode(COPIES["JPEG 40"], "PNG")
    assert same_picture(NewPicture(data), keypoints(ORIGINAL)) is True
