"""The console's pages: which content each path serves, and the one layout they share (head,
navigation bar), put together when the console starts: a page is its `<main>` content plus a
line here, not another copy of the skeleton."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
LAYOUT_FILE = "layout.html"


@dataclass(frozen=True)
class Page:
    content: str  # the file in static/ with what goes inside <main>
    title: str  # after "memebot · " in the window title
    script: str  # its own script in static/, after common.js


PAGES = {
    "/": Page("channel.html", "channel", "channel.js"),
    "/review": Page("review.html", "review", "review.js"),
    "/models": Page("models.html", "models", "models.js"),
    "/settings": Page("settings.html", "settings", "settings.js"),
    "/desk": Page("desk.html", "review desk", "desk.js"),
    "/audit": Page("audit.html", "audit log", "audit.js"),
    "/login": Page("login.html", "admin sign-in", "login.js"),
}
NAV = (("/", "Channel"), ("/review", "Review"), ("/models", "Models"),
       ("/settings", "Settings"), ("/desk", "Desk"), ("/audit", "Audit"))
CURRENT = ' aria-current="page"'


def nav_html(current: str) -> str:
    """The links of the navigation bar, the page at `current` marked as the one shown."""
    links = []
    for path, title in NAV:
        here = CURRENT if path == current else ""
        links.append(f'    <a href="{path}"{here}>{escape(title)}</a>')
    return "\n".join(links)


def render_page(path: str) -> str:
    """The HTML served at `path`: the layout around the page's own content."""
    page = PAGES[path]
    html = (STATIC_DIR / LAYOUT_FILE).read_text(encoding="utf-8")
    parts = {
        "<!-- title -->": escape(page.title),
        "<!-- script -->": page.script,
        "<!-- pages -->": nav_html(path),
        "<!-- main -->": (STATIC_DIR / page.content).read_text(encoding="utf-8"),
    }
    for marker, value in parts.items():
        if marker not in html:
            raise ValueError(f"{LAYOUT_FILE} has no {marker}")
        html = html.replace(marker, value, 1)
    return html
