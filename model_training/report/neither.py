"""Section "Neither game": how the OOD score separates doom/AC memes from everything else, per
source; AUROC and FPR at 95% TPR; leave-one-source-out refits; the thresholds; examples."""

from __future__ import annotations

import numpy as np

from inference.metrics import fpr_at_tpr, roc_auc
from model_training.calibrate import fit_calibrated_head
from model_training.evaluate import EvalItem, compute_metrics, score_histogram_figure
from model_training.report.context import ReportData, ReportOptions
from model_training.report.figures import figure, thumbnail
from model_training.report.metrics import pct
from model_training.report.page import Card, Gallery, Paragraph, Section, Table

MIN_SOURCE = 5  # a source needs this many images to be held out on its own


def family(source: str) -> str:
    """Sources sharing a prefix (genshin-fanart, genshin-screens) are one family for holding out."""
    return source.split("-")[0] if source.startswith("genshin") else source


def _other_items(data: ReportData) -> list[tuple[EvalItem, str, int]]:
    """(item, source, index) of every test or held-out image the model should call "other"."""
    out = []
    for part in ("test", "holdout"):
        p = data.parts[part]
        for i, (s, it) in enumerate(zip(p.samples, p.items, strict=False)):
            if s.label not in data.games:
                out.append((it, data.sources.get(s.sha256, s.label), i))
    return out


def _auc_fpr(s_in: np.ndarray, s_out: np.ndarray) -> tuple[float, float]:
    return roc_auc(s_out, s_in), fpr_at_tpr(s_in, s_out)


def leave_one_source_out(data: ReportData) -> list[list[str]]:
    """Each "other" source is removed from training and validation in turn; the refitted head and
    calibration (the pipeline's code) then meet it as never-seen images."""
    tr, va, te = data.parts["train"], data.parts["val"], data.parts["test"]
    fam = {sha: family(src) for sha, src in data.sources.items()}
    everything = [(s, part) for part in ("train", "val", "test") for s in data.parts[part].samples]
    counts: dict[str, int] = {}
    for s, _ in everything:
        if s.label == data.reject:
            counts[fam.get(s.sha256, s.label)] = counts.get(fam.get(s.sha256, s.label), 0) + 1
    games_test = [i for i, s in enumerate(te.samples) if s.label in data.games]
    rows = []
    for src in sorted(k for k, n in counts.items() if n >= MIN_SOURCE):
        keep_tr = np.array(
            [not (s.label == data.reject and fam.get(s.sha256) == src) for s in tr.samples]
        )
        keep_va = np.array(
            [not (s.label == data.reject and fam.get(s.sha256) == src) for s in va.samples]
        )
        held = [
            (p, i)
            for p in ("train", "val", "test")
            for i, s in enumerate(data.parts[p].samples)
            if s.label == data.reject and fam.get(s.sha256) == src
        ]
        y_tr, y_va = data.y_index("train")[keep_tr], data.y_index("val")[keep_va]
        if len(set(y_tr.tolist())) < len(data.labels) or not keep_va.any():
            continue  # the source is the whole "other" class: nothing left to learn "other" from
        f = fit_calibrated_head(
            data.labels,
            data.reject,
            tr.x[keep_tr],
            y_tr,
            va.x[keep_va],
            y_va,
            dict(data.meta.preprocess),
            seed=0,
            method=data.meta.ood.method,
        )
        samples = [te.samples[i] for i in games_test] + [data.parts[p].samples[i] for p, i in held]
        x = np.concatenate([te.x[games_test]] + [data.parts[p].x[[i]] for p, i in held])
        raw_items = _decide(f, samples, x)
        m = compute_metrics(raw_items, data.labels, data.reject)
        rows.append(
            [
                src,
                str(len(held)),
                f"{m.get('ood_auroc', float('nan')):.3f}",
                f"{m.get('other_auroc', float('nan')):.3f}",
                pct(m.get("other_fpr_at_95tpr")),
                pct(m.get("other_recall")),
                pct(m.get("games_kept")),
            ]
        )
    return rows


def _decide(f, samples, x):  # type: ignore[no-untyped-def]
    from inference.classifier import RawOutput
    from model_training.evaluate import items_from_outputs

    return items_from_outputs(samples, RawOutput(f.logits(x), x), f.meta, f.scorer)


def build(data: ReportData, options: ReportOptions) -> Section:
    sec = Section("neither", "Memes of neither game")
    if data.reject not in data.labels:
        sec.blocks.append(Paragraph(f"This model has no '{data.reject}' class.", "note"))
        return sec
    te = data.parts["test"]
    game_items = [it for it in te.items if it.label in data.games]
    others = _other_items(data)
    ood = data.meta.ood
    sec.blocks.append(
        Paragraph(
            f"An image is called '{data.reject}' when the classifier's own P({data.reject}) "
            "reaches "
            f"{ood.other_threshold:.3f}, or when its OOD score ({ood.method}: how unlike the "
            "memes it knows) "
            f"is above {ood.threshold:.3f}. Both thresholds were set on validation memes so that "
            "about 96% of "
            f"game memes are kept."
        )
    )
    if not game_items or not others:
        sec.blocks.append(
            Paragraph(
                "The test split lacks game memes or other images: nothing to separate.", "note"
            )
        )
        return sec
    s_in = np.array([it.prediction.ood_score for it in game_items])
    groups = {"doom / Animal Crossing": s_in}
    by_source: dict[str, list[EvalItem]] = {}
    for it, src, _ in others:
        by_source.setdefault(src, []).append(it)
    groups[f"{data.reject} (all)"] = np.array([it.prediction.ood_score for it, _, _ in others])
    sec.blocks.append(
        figure(
            score_histogram_figure(groups, ood.threshold, title="OOD score, test split"),
            "OOD score of game memes vs other images, with the threshold.",
            "ood_histogram",
        )
    )
    per_src = {"doom / Animal Crossing": s_in} | {
        src: np.array([it.prediction.ood_score for it in items])
        for src, items in sorted(by_source.items())
    }
    sec.blocks.append(
        figure(
            score_histogram_figure(per_src, ood.threshold, title="per source"),
            "The same scores with other images split by source (MANIFEST.csv).",
            "ood_per_source",
        )
    )
    m = compute_metrics(te.items + data.parts["holdout"].items, data.labels, data.reject)
    rows = [
        [
            "all other images",
            str(len(others)),
            f"{m['ood_auroc']:.3f}",
            pct(m["ood_fpr_at_95tpr"]),
            f"{m['other_auroc']:.3f}",
            pct(m["other_fpr_at_95tpr"]),
            pct(m["other_recall"]),
        ]
    ]
    for src, items in sorted(by_source.items()):
        s_out = np.array([it.prediction.ood_score for it in items])
        auc, fpr = _auc_fpr(s_in, s_out)
        share = float(np.mean([it.prediction.label == data.reject for it in items]))
        rows.append([src, str(len(items)), f"{auc:.3f}", pct(fpr), "", "", pct(share)])
    sec.blocks.append(
        Table(
            [
                "other images",
                "n",
                "OOD AUROC",
                "FPR at 95% TPR",
                "decision AUROC",
                "decision FPR at 95% TPR",
                "caught",
            ],
            rows,
            f"AUROC: the chance an other image scores above a game meme (1 = perfect, 0.5 = "
            f"chance). FPR at 95% TPR: other images let through when 95% of game memes are "
            f"kept. Game memes kept on the test split: {pct(m['games_kept'])}.",
        )
    )
    data.summary |= {
        "other_auroc": m["other_auroc"],
        "ood_auroc": m["ood_auroc"],
        "other_fpr_at_95tpr": m["other_fpr_at_95tpr"],
        "other_recall": m["other_recall"],
        "games_kept": m["games_kept"],
    }
    if options.leave_one_source_out:
        loso = leave_one_source_out(data)
        if loso:
            sec.blocks.append(
                Table(
                    [
                        "held-out source",
                        "images",
                        "OOD AUROC",
                        "decision AUROC",
                        "FPR at 95% TPR",
                        "caught",
                        "game memes kept",
                    ],
                    loso,
                    "Leave-one-source-out: each source is removed from training and validation, "
                    "the head and thresholds refitted, then the source is scored as brand-new "
                    "images: the honest figure for kinds of image nobody labelled.",
                )
            )
            data.summary["leave_one_source_out"] = {r[0]: float(r[3]) for r in loso}
        else:
            sec.blocks.append(
                Paragraph("Leave-one-source-out: no source has enough images to hold out.", "note")
            )
    else:
        sec.blocks.append(
            Paragraph(f"Leave-one-source-out refits were left out. {options.note}", "note")
        )
    caught = sorted(
        [o for o in others if o[0].prediction.label == data.reject],
        key=lambda o: -o[0].prediction.ood_score,
    )
    missed = sorted(
        [o for o in others if o[0].prediction.label != data.reject],
        key=lambda o: -o[0].prediction.confidence,
    )
    for name, chosen, caption in (
        ("caught", caught, "Caught: other images called other (most unusual first)."),
        ("missed", missed, "Missed: other images given a game label (most confident first)."),
    ):
        cards = []
        for it, src, _ in chosen[: options.examples]:
            cards.append(
                Card(
                    thumbnail(it.path),
                    [
                        f"source: {src}",
                        f"said: {it.prediction.label} ({it.prediction.confidence:.0%})",
                        f"OOD score {it.prediction.ood_score:.2f}",
                    ],
                )
            )
        if cards:
            sec.blocks.append(Gallery(cards, caption, f"other_{name}"))
        else:
            sec.blocks.append(Paragraph(f"No {name} examples.", "note"))
    return sec
