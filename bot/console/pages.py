"""The console's pages: which file each path serves, and the one navigation bar they share,
written into each page when the console starts (a new page is added here, not in every file)."""

from __future__ import annotations

from html import escape
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
PAGES = {"/": "channel.html", "/review": "review.html", "/models": "models.html",
         "/settings": "settings.html", "/desk": "desk.html", "/audit": "audit.html",
         "/login": "login.html"}
NAV = (("/", "Channel"), ("/review", "Review"), ("/models", "Models"),
       ("/settings", "Settings"), ("/desk", "Desk"), ("/audit", "Audit"))
NAV_MARKER = "<!-- pages -->"
CURRENT = ' aria-current="page"'


def nav_html(current: str) -> str:
    """The links of the navigation bar, the page at `current` marked as the one shown."""
    links = []
    for path, title in NAV:
        here = CURRENT if path == current else ""
        links.append(f'    <a href="{path}"{here}>{escape(title)}</a>')
    return "\n".join(links)


def render_page(path: str) -> str:
    """The HTML served at `path`, with its navigation bar."""
    html = (STATIC_DIR / PAGES[path]).read_text(encoding="utf-8")
    if NAV_MARKER not in html:
        raise ValueError(f"{PAGES[path]} has no {NAV_MARKER} for its navigation bar")
    return html.replace(NAV_MARKER, nav_html(path))
