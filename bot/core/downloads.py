"""Fetching posted images: only from the platform's own file host, size-capped, time-capped,
streamed and hashed on the way in. A few redirects are followed (Tenor's and Giphy's media
URLs may redirect), each only to an allowed origin and never from https down to http.

URLs may embed a bot token (Telegram's file URLs do), so no message or log line here ever
contains a URL.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class DownloadError(Exception):
    """The image could not be fetched; the message is written for the person who posted it."""


class TooLargeError(DownloadError):
    pass


class ForbiddenURLError(DownloadError):
    """A URL outside the allowed origins: refused before any connection is made."""


@dataclass(frozen=True)
class Download:
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in, for exact comparisons."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme, -1)
    try:
        port = parts.port or default
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


class Downloader:
    """One pooled aiohttp session; `fetch` refuses anything but the allowed origins."""

    def __init__(
        self,
        allowed_origins: Iterable[str],
        *,
        max_bytes: int,
        timeout_s: float,
    ) -> None:
        self.allowed = frozenset(origin(url) for url in allowed_origins)
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Downloader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def check_url(self, url: str) -> None:
        scheme, host, port = origin(url)
        if scheme not in ("http", "https") or (scheme, host, port) not in self.allowed:
            raise ForbiddenURLError("the file is not on the chat platform's file server")

    def check_size(self, size: int | None) -> None:
        if size is not None and size > self.max_bytes:
            raise TooLargeError(
                f"the file is too large ({megabytes(size)}; the limit is "
                f"{megabytes(self.max_bytes)})"
            )

    def _redirect_target(self, url: str, response: aiohttp.ClientResponse) -> str:
        """Where a redirect points, if it may be followed; refused otherwise."""
        target = urljoin(url, response.headers.get("Location", ""))
        try:
            self.check_url(target)
        except ForbiddenURLError:
            raise ForbiddenURLError("the file server sent me to another site") from None
        if origin(url)[0] == "https" and origin(target)[0] != "https":
            raise ForbiddenURLError("the file server sent me to an insecure address")
        return target

    async def fetch(self, url: str) -> Download:
        self.check_url(url)
        if self._session is None:
            # Redirects are followed by hand: aiohttp's own would leave the allowed origins.
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        try:
            async with asyncio.timeout(self.timeout_s):  # bounds the redirects together
                for _ in range(MAX_REDIRECTS + 1):
                    async with self._session.get(url, allow_redirects=False) as response:
                        if response.status in REDIRECT_STATUSES:
                            url = self._redirect_target(url, response)
                            continue
                        return await self._read(response)
                raise DownloadError("the file server redirected me too many times")
        except TimeoutError as exc:
            raise DownloadError("the download took too long") from exc
        except aiohttp.ClientError as exc:
            # The exception text may contain the URL (and with it a token): name the type only.
            raise DownloadError(f"the download failed ({type(exc).__name__})") from None

    async def _read(self, response: aiohttp.ClientResponse) -> Download:
        if response.status != 200:
            raise DownloadError(f"the file server answered {response.status}")
        self.check_size(response.content_length)
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            received += len(chunk)
            if received > self.max_bytes:
                raise TooLargeError(f"the file is too large (over {megabytes(self.max_bytes)})")
            digest.update(chunk)
            chunks.append(chunk)
        return Download(data=b"".join(chunks), sha256=digest.hexdigest())
