"""Content-addressed image and clip files: `<root>/ab/cd/<sha256>.<ext>`, written atomically.

The blob is always durable on disk before its database row commits, so a crash in between
leaves only an orphan file (harmless; `BlobStore.remove_orphans` deletes it), never a row
pointing at nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from storage.clip_formats import STORED_EXTENSIONS as CLIP_EXTENSIONS
from storage.clip_formats import sniff
from storage.errors import BlobError
from storage.image_formats import STORED_EXTENSIONS

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
MAX_PIXELS = 50_000_000  # far above any meme; refuses decompression bombs before decoding


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    format: str
    extension: str
    width: int
    height: int
    byte_size: int


def inspect_image(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Hash the bytes and prove they decode completely as an image; raise BlobError if not.

    A full decode (not just `verify`) is needed: a truncated JPEG passes `verify` and the header
    parse, and only fails when the pixel data runs out.
    """
    if not data:
        raise BlobError("the image is empty (0 bytes)")
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            if width * height > max_pixels:
                raise BlobError(f"the image is too large ({width}x{height} pixels)")
            img.load()
    except BlobError:
        raise
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        # Pillow's own text is for developers (it can hold reprs such as `<_io.BytesIO object
        # at 0x...>`); the message goes to the person who posted the file.
        log.debug("%d bytes do not decode as an image: %r", len(data), exc)
        raise BlobError(f"the file is not a complete image ({_why_undecodable(exc)})") from exc
    # Only the formats the bot reads; anything else is refused rather than stored under a guess.
    extension = STORED_EXTENSIONS.get(fmt)
    if extension is None:
        raise BlobError(f"unsupported image format {fmt or 'unknown'!r}")
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        extension=extension,
        width=width,
        height=height,
        byte_size=len(data),
    )


def inspect_clip(data: bytes, container: str, width: int, height: int) -> ImageInfo:
    """Hash a clip's bytes for the blob store. The classifier decoded it already (the caller
    passes what it learnt: the container and frame size); here only the container is checked
    against what its first bytes say, so a blob is never stored under a wrong name."""
    if not data:
        raise BlobError("the clip is empty (0 bytes)")
    extension = CLIP_EXTENSIONS.get(container) or STORED_EXTENSIONS.get(container.upper())
    if extension is None:
        raise BlobError(f"unsupported clip format {container!r}")
    if sniff(data) != container:
        raise BlobError(f"the file is not a {container.upper()} clip")
    if width <= 0 or height <= 0:
        raise BlobError("the clip has no frame size")
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        format=container.upper(),
        extension=extension,
        width=width,
        height=height,
        byte_size=len(data),
    )


def _why_undecodable(exc: BaseException) -> str:
    """A short reason, fit to show a chat user, for why Pillow could not decode an image."""
    if isinstance(exc, PILImage.UnidentifiedImageError):
        return "its format is not recognised"
    if isinstance(exc, PILImage.DecompressionBombError):
        return "it has too many pixels to decode safely"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return "it is truncated"
    return "its data is damaged"


class BlobStore:
    """Files under `root`; all methods are blocking (callers run them in a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, extension: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.{extension}"

    def put(self, data: bytes, info: ImageInfo) -> Path:
        """Store the bytes unless an identical blob exists; return the final path."""
        path = self.path_for(info.sha256, info.extension)
        if path.exists() and path.stat().st_size == info.byte_size:
            # Refresh the mtime so a concurrent `remove_orphans` with a grace period keeps it
            # until our row commits.
            os.utime(path)
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return path

    def iter_blobs(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not (first.is_dir() and len(first.name) == 2):
                continue
            for second in sorted(first.iterdir()):
                if second.is_dir():
                    yield from sorted(p for p in second.iterdir() if p.is_file())

    def remove_orphans(
        self, is_referenced: Callable[[str], bool], min_age_s: float
    ) -> tuple[int, int, int, int]:
        """Delete blobs whose sha256 has no row, and stale temp files.

        Only files older than `min_age_s` go: a blob written a moment ago may belong to a row
        that is about to commit. Returns (removed blobs, removed temp files, bytes freed, kept).
        """
        cutoff = time.time() - min_age_s
        removed = temps = freed = kept = 0
        for path in self.iter_blobs():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.name.startswith(TEMP_PREFIX):
                if stat.st_mtime <= cutoff:
                    path.unlink(missing_ok=True)
                    temps += 1
                    freed += stat.st_size
                continue
            sha256 = path.name.split(".", 1)[0]
            if is_referenced(sha256) or stat.st_mtime > cutoff:
                kept += 1
                continue
            path.unlink(missing_ok=True)
            removed += 1
            freed += stat.st_size
        return removed, temps, freed, kept


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not supported on every OS/filesystem, hence best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
