"""Input checks run before any write, so bad input raises and never reaches the database."""

from __future__ import annotations

import math
import re

from storage.errors import InvalidInputError

MAX_ID_LENGTH = 64  # Telegram ids and Discord snowflakes are 64-bit ints: 20 digits fit easily
LABEL_RE = re.compile(r"[a-z0-9_]{1,32}")
PLATFORM_RE = re.compile(r"[a-z0-9_]{1,32}")
VERSION_RE = re.compile(r"[A-Za-z0-9._:+-]{1,64}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")


def check_id(value: object, what: str) -> str:
    """A platform id (chat, message, user, role) as a non-empty string of at most 64 chars."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        kind = type(value).__name__
        raise InvalidInputError(f"{what} must be a string or an integer, got {kind}")
    text = str(value)
    if not text or len(text) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{what} must be 1-{MAX_ID_LENGTH} characters, got {len(text)}")
    if text != text.strip() or not text.isprintable():
        raise InvalidInputError(f"{what} must not contain whitespace padding or control characters")
    return text


MAX_CAPTION_LENGTH = 4096  # Telegram captions stop at 1,024 characters, Discord messages at 4,000


def check_caption(value: object) -> str | None:
    """The words posted with an image: None when there are none. A caption is a hint for the
    classifier, so an over-long one is cut rather than costing the post; NUL and other control
    characters (PostgreSQL refuses NUL in text) become spaces."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"caption must be a string, got {type(value).__name__}")
    text = "".join(c if c.isprintable() or c == "\n" else " " for c in value).strip()
    return text[:MAX_CAPTION_LENGTH] or None


def check_label(name: object) -> str:
    if not isinstance(name, str) or not LABEL_RE.fullmatch(name):
        raise InvalidInputError(
            f"label {name!r} is invalid: use 1-32 lowercase letters, digits or underscores"
        )
    return name


def check_platform(name: object) -> str:
    if not isinstance(name, str) or not PLATFORM_RE.fullmatch(name):
        raise InvalidInputError(f"platform {name!r} is invalid: use 1-32 lowercase letters/digits")
    return name


def check_version(version: object) -> str:
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise InvalidInputError(f"model version {version!r} is invalid: 1-64 of [A-Za-z0-9._:+-]")
    return version


def check_sha256(value: object) -> str:
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value):
        raise InvalidInputError(f"sha256 {value!r} is not 64 lowercase hex digits")
    return value


def check_probability(value: object, what: str) -> float:
    number = check_finite(value, what)
    if not 0.0 <= number <= 1.0:
        raise InvalidInputError(f"{what} must be between 0 and 1, got {number}")
    return number


def check_finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{what} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(f"{what} must be finite, got {number}")
    return number


def check_short_text(value: object, what: str, max_length: int = 32) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise InvalidInputError(f"{what} must be a string of 1-{max_length} characters")
    return value
