"""The one preprocessing path: every encoding a user may post, and every bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference.errors import ImageError
from inference.preprocess import PreprocessConfig, load_image, to_array
from tests.support.imagegen import encode, make_image

CFG = PreprocessConfig(input_size=64)


def _rgba(size=(40, 30)) -> Image.Image:
    img = Image.new("RGBA", size, (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (10, 10, 20, 20))
    return img


@pytest.mark.parametrize(
    "data",
    [
        encode(make_image("doom", 1), "JPEG"),
        encode(make_image("doom", 1), "PNG"),
        encode(make_image("doom", 1), "WEBP"),
        encode(make_image("doom", 1), "BMP"),
        encode(make_image("doom", 1).convert("CMYK"), "JPEG"),
        encode(make_image("doom", 1).convert("P"), "PNG"),
        encode(make_image("doom", 1).convert("L"), "PNG"),
        encode(make_image("doom", 1).convert("1"), "PNG"),
        encode(make_image("doom", 1).convert("LA"), "PNG"),
        encode(_rgba(), "PNG"),
        encode(_rgba(), "WEBP"),
    ],
    ids=["jpeg", "png", "webp", "bmp", "cmyk", "palette", "grey", "1bit", "LA", "rgba-png",
         "rgba-webp"],
)
def test_every_encoding_becomes_the_same_tensor_shape(data: bytes) -> None:
    arr = to_array(data, CFG)
    assert arr.shape == (3, 64, 64) and arr.dtype == np.float32
    assert arr.min() >= -1.0 and arr.max() <= 1.0


def test_transparent_pixels_take_the_configured_background() -> None:
    img = load_image(encode(_rgba(), "PNG"), background=(255, 255, 255))
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 255, 255)  # transparent red -> white, not red
    assert img.getpixel((15, 15)) == (0, 0, 255)


def test_16_bit_greyscale() -> None:
    arr16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    img = Image.fromarray(arr16)  # uint16 -> mode I;16
    out = load_image(encode(img, "PNG"))
    assert out.mode == "RGB" and out.size == (64, 64)
    assert np.asarray(out).max() > 200  # scaled to 8 bits, not clipped to black/white


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (60, 30), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (30, 60)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    r, _, b = load_image(buf.getvalue()).getpixel((5, 5))
    assert r > 200 and b < 50


def test_animated_webp_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ((0, 255, 0), (255, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    r, g, _ = load_image(buf.getvalue()).getpixel((5, 5))
    assert g > 200 and r < 60


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is a text file\n" * 10, "not an image"),
        (encode(make_image("doom", 2), "JPEG")[:300], "corrupt"),
        (encode(make_image("doom", 2), "PNG")[:200], "corrupt"),
    ],
    ids=["zero-bytes", "text", "truncated-jpeg", "truncated-png"],
)
def test_bad_input_gets_a_clear_error(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        to_array(data, CFG)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    big = encode(Image.new("L", (5000, 5000)), "PNG")  # tiny file, 25 Mpx
    with pytest.raises(ImageError, match="too large"):
        load_image(big, max_pixels=10_000_000)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        to_array(tmp_path / "nope.jpg", CFG)


@pytest.mark.parametrize("policy", ["squash", "letterbox", "center_crop"])
def test_resize_policies_give_model_size(policy: str) -> None:
    cfg = PreprocessConfig(input_size=48, resize=policy)  # type: ignore[arg-type]
    assert to_array(encode(make_image("other", 3, (200, 50)), "PNG"), cfg).shape == (3, 48, 48)
