"""The report's one renderer: sections of blocks -> one self-contained HTML file (inline CSS,
images as data URIs, no script, nothing fetched)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Paragraph:
    text: str
    kind: str = ""  # "" | "note" (a plain statement that a part does not apply or was cut)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    uri: str  # data:image/png;base64,...
    caption: str
    name: str  # stable id, checked by the tests


@dataclass
class Card:
    uri: str
    lines: list[str]
    extra_uri: str = ""  # e.g. the Grad-CAM heat map beside the meme


@dataclass
class Gallery:
    cards: list[Card]
    caption: str = ""
    name: str = ""


Block = Paragraph | Table | Figure | Gallery


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    seconds: float = 0.0


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}caption{caption-side:bottom;font-size:.85em;color:#555;padding-top:.3em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:6px;width:340px;font-size:.85em}
.card img{width:160px;height:160px;object-fit:contain;background:#fafafa}
.card p{margin:.2em 0;word-break:break-word}nav a{margin-right:1em}
.muted{color:#666;font-size:.85em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _block(b: Block) -> str:
    if isinstance(b, Paragraph):
        cls = ' class="note"' if b.kind == "note" else ""
        return f"<p{cls}>{_e(b.text)}</p>"
    if isinstance(b, Table):
        head = "".join(f"<th>{_e(h)}</th>" for h in b.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in b.rows
        )
        cap = f"<caption>{_e(b.caption)}</caption>" if b.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(b, Figure):
        return (
            f'<figure data-figure="{_e(b.name)}"><img src="{b.uri}" alt="{_e(b.caption)}">'
            f"<figcaption>{_e(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Gallery):
        cards = []
        for c in b.cards:
            imgs = f'<img src="{c.uri}" alt="meme">'
            if c.extra_uri:
                imgs += f'<img src="{c.extra_uri}" alt="Grad-CAM heat map">'
            cards.append(
                f'<div class="card">{imgs}'
                + "".join(f"<p>{_e(line)}</p>" for line in c.lines)
                + "</div>"
            )
        cap = f'<p class="muted">{_e(b.caption)}</p>' if b.caption else ""
        gallery = f'<div class="gallery">{"".join(cards)}</div>'
        return f'<div data-gallery="{_e(b.name)}">{cap}{gallery}</div>'
    raise TypeError(f"unknown block {type(b).__name__}")


def section_html(s: Section) -> str:
    """One section as an HTML fragment (the notebook shows sections one at a time)."""
    body = "".join(_block(b) for b in s.blocks)
    return f'<section id="{_e(s.id)}"><h2>{_e(s.title)}</h2>{body}</section>'


def render(title: str, intro: list[Block], sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be fetched: the file must open offline, and the console serves it sandboxed.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        *(_block(b) for b in intro),
        f"<nav>{nav}</nav>",
    ]
    for s in sections:
        s.blocks.append(Paragraph(f"section built in {s.seconds:.1f} s"))
        parts.append(section_html(s))
    parts.append("</body></html>")
    return "\n".join(parts)
