"""`memebot report`: one self-contained HTML file answering the project's four questions about a
model version, from the package's own evaluation on cached embeddings."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.metadata import REPORT_FILE
from model_training.report import lucky, metrics, mistakes, neither, new_class
from model_training.report.context import ReportData, ReportOptions, load
from model_training.report.page import Paragraph, Section, Table, render

log = logging.getLogger(__name__)

SUMMARY_FILE = "report.json"  # the report's headline numbers, beside report.html
DEFAULT_OPTIONS = ReportOptions()



@dataclass
class ReportResult:
    path: Path
    seconds: float
    bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def sections(data: ReportData, options: ReportOptions) -> list[Section]:
    """Each section in turn, timed (the report states what each part cost)."""
    builders = [
        ("metrics", lambda: metrics.build(data)),
        ("mistakes", lambda: mistakes.build(data, options)),
        ("lucky", lambda: lucky.build(data, options)),
        ("neither", lambda: neither.build(data, options)),
        ("new_class", lambda: new_class.build(data, options)),
    ]
    out = []
    for name, make in builders:
        t0 = time.perf_counter()
        sec = make()
        sec.seconds = time.perf_counter() - t0
        data.timings[name] = sec.seconds
        log.info("report section %s: %.1f s", name, sec.seconds)
        out.append(sec)
    return out


def _intro(data: ReportData, options: ReportOptions) -> list:
    m = data.meta
    sizes = {p: len(data.parts[p].samples) for p in data.parts}
    rows = [
        ["version", m.version],
        ["created", m.created_at],
        ["backbone", m.backbone],
        ["labels", ", ".join(m.labels)],
        ["dataset", str(data.dataset_dir)],
        ["split (memes)", ", ".join(f"{k} {v}" for k, v in sizes.items() if v)],
        [
            "how it was trained",
            str(
                m.training.get("kind")
                or (
                    "fine-tuned top stages"
                    if m.training.get("finetune_epochs")
                    else "linear head on frozen embeddings"
                )
            ),
        ],
        ["reads text", "yes (Tesseract + word model)" if data.text_model else "no"],
    ]
    blocks: list = [Table(["", ""], rows)]
    blocks.append(
        Paragraph(
            "Four questions: how good is it and what does it get wrong; did it learn or get "
            "lucky; what happens to images of neither game; how is a new class added. Every "
            "number below is computed from this model's own weights on memes it did not "
            "train on (the test split), unless the text says otherwise."
        )
    )
    if options.note:
        blocks.append(Paragraph(options.note, "note"))
    return blocks


def build_report(
    folder: Path,
    *,
    dataset_dir: Path | None = None,
    cache_dir: Path = Path("var/cache"),
    out_dir: Path | None = None,
    options: ReportOptions = DEFAULT_OPTIONS,
) -> ReportResult:
    """Write report.html (and report.json, its headline numbers) into out_dir (default: the model
    folder, where the console serves it)."""
    started = time.perf_counter()
    data = load(Path(folder), dataset_dir, cache_dir, options)
    secs = sections(data, options)
    cost = Section("cost", "How this report was made")
    cost.blocks.append(
        Table(
            ["step", "seconds"],
            [[k, f"{v:.1f}"] for k, v in data.timings.items()]
            + [["total", f"{time.perf_counter() - started:.1f}"]],
            "Embeddings and OCR come from the training caches; the permutation test "
            "refits the head once per permutation.",
        )
    )
    secs.append(cost)
    html = render(f"memebot model report: {data.meta.version}", _intro(data, options), secs)
    target = Path(out_dir) if out_dir is not None else Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    path = target / REPORT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    seconds = time.perf_counter() - started
    data.summary |= {
        "version": data.meta.version,
        "seconds": seconds,
        "timings": data.timings,
        "bytes": path.stat().st_size,
    }
    (target / SUMMARY_FILE).write_text(json.dumps(data.summary, indent=2, default=str))
    log.info("report %s written in %.0f s (%.1f MB)", path, seconds, path.stat().st_size / 1e6)
    return ReportResult(path, seconds, path.stat().st_size, dict(data.timings), data.summary)
