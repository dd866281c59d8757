"""Who may do what in the console: the admin token, the admin session cookie, CSRF checks,
the Host check against DNS rebinding, and the security headers of every response.

- The admin token comes from `Settings.console_admin_token`, else from
  `<data_dir>/console-admin-token` (0600), generated at first start. It is never logged: the
  runner prints it once, on the start that generated it.
- Signing in sets `memebot_admin`, an HttpOnly SameSite=Strict cookie holding an HMAC of the
  token (so rotating the token signs everybody out). API clients may send
  `Authorization: Bearer <token>` instead.
- Every state-changing request (POST, PUT, PATCH, DELETE) made with cookies must carry the
  double-submit token: header `X-CSRF-Token` equal to the `memebot_csrf` cookie
  (SameSite=Strict), and any `Origin` / `Sec-Fetch-Site` header must say "same origin".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

log = logging.getLogger(__name__)

TOKEN_FILE = "console-admin-token"
ADMIN_COOKIE = "memebot_admin"
CSRF_COOKIE = "memebot_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_MAX_AGE_S = 7 * 24 * 3600
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AdminToken:
    value: str
    source: str  # "settings" or the path of the token file
    generated: bool  # True only on the start that created the token file


def load_admin_token(configured: str | None, data_dir: Path) -> AdminToken:
    """The configured token, else the stored one, else a new one stored with 0600 perms."""
    if configured:
        return AdminToken(configured, "settings", generated=False)
    path = Path(data_dir) / TOKEN_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if text:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
            log.warning("%s was readable by others; its permissions are now 0600", path)
        return AdminToken(text, str(path), generated=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    path.unlink(missing_ok=True)  # an empty file left by a crash
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return AdminToken(token, str(path), generated=True)


class Guard:
    """The checks above, for one admin token."""

    def __init__(self, token: str, *, loopback_only: bool) -> None:
        self._token = token
        self._session = hmac.new(
            token.encode(), b"memebot-console-session-v1", hashlib.sha256
        ).hexdigest()
        self.loopback_only = loopback_only

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token.encode())

    def is_admin(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.token_matches(auth[len("Bearer "):].strip())
        cookie = request.cookies.get(ADMIN_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self._session.encode())

    def sign_in(self, response: web.StreamResponse) -> None:
        response.set_cookie(
            ADMIN_COOKIE, self._session, max_age=SESSION_MAX_AGE_S, path="/",
            httponly=True, samesite="Strict",
        )

    @staticmethod
    def sign_out(response: web.StreamResponse) -> None:
        response.del_cookie(ADMIN_COOKIE, path="/")

    # ------------------------------------------------------------------------------ CSRF

    @staticmethod
    def csrf_problem(request: web.Request) -> str | None:
        """Why this state-changing request must be refused, or None if it may proceed."""
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return None  # no ambient credentials: a forged request cannot carry the token
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site request refused"
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return "request from another origin refused"
        cookie = request.cookies.get(CSRF_COOKIE, "")
        header = request.headers.get(CSRF_HEADER, "")
        if not cookie or not header or not hmac.compare_digest(cookie.encode(), header.encode()):
            return "missing or wrong CSRF token (reload the page)"
        return None

    def host_allowed(self, request: web.Request) -> bool:
        """On a loopback bind, only loopback host names: a DNS-rebinding page gets nothing."""
        if not self.loopback_only:
            return True
        host = request.host.lower()
        if host.startswith("["):
            name = host[: host.find("]") + 1]
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name in LOOPBACK_NAMES


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_csrf_cookie(request: web.Request, response: web.StreamResponse) -> None:
    if not request.cookies.get(CSRF_COOKIE):
        # Readable by the page's script (double submit); SameSite=Strict keeps it home.
        response.set_cookie(
            CSRF_COOKIE, secrets.token_urlsafe(32), path="/", samesite="Strict", httponly=False
        )


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def middleware(guard: Guard) -> Middleware:
    @web.middleware
    async def secure(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not guard.host_allowed(request):
            return json_error(421, "unknown host name: open the console as 127.0.0.1 or localhost")
        if request.method not in SAFE_METHODS:
            problem = guard.csrf_problem(request)
            if problem is not None:
                return json_error(403, problem)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = json_error(exc.status, exc.text if exc.text and not exc.text.startswith(
                f"{exc.status}:") else exc.reason)
        if response.prepared:  # a stream (server-sent events) set its own headers
            return response
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cache-Control", "no-store")
        ensure_csrf_cookie(request, response)
        return response

    return secure
