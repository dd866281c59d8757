"""Log set-up for bot processes: optional JSON lines, and secrets redacted from every line.

PTB logs request URLs, which contain the bot token, at DEBUG; httpx logs them at INFO. The
filter sits on the handlers (a logger's filter would miss records of its child loggers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[REDACTED]"


class RedactSecrets(logging.Filter):
    """Replaces each secret (and its URL-encoded form) in the message and the traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        variants = set()
        for secret in secrets:
            if secret:
                variants.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


# Libraries that announce their own start-up at INFO: Alembic lists its plugins each time a
# migration context opens (every start, the trainer's too), faiss which CPU builds it tried.
# Only their warnings are worth a line outside debugging.
CHATTY_LIBRARIES = ("alembic.runtime.plugins", "faiss.loader")


def quiet_libraries() -> None:
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(
    secrets: Iterable[str], *, json_lines: bool = False, logger: logging.Logger | None = None
) -> RedactSecrets:
    """Add redaction (and JSON formatting) to the handlers of `logger` (default: root)."""
    target = logger or logging.getLogger()
    if not target.handlers:
        target.addHandler(logging.StreamHandler())
    redact = RedactSecrets(secrets)
    for handler in target.handlers:
        handler.addFilter(redact)
        if json_lines:
            handler.setFormatter(JsonFormatter())
    # httpx announces every request (a token-bearing URL, redacted above) at INFO: one line
    # per poll is noise unless debugging.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return redact
