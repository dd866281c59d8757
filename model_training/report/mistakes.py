"""Section "What does it get wrong, and why?": the worst test mistakes (highest loss) with the words
read and a Grad-CAM heat map, and causes grouped from measured properties, with counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.ood import l2_normalize
from inference.text import words
from model_training.report.context import ReportData, ReportOptions
from model_training.report.figures import gradcam_uris, thumbnail
from model_training.report.image_stats import measure
from model_training.report.page import Card, Gallery, Paragraph, Section, Table

# The measured properties behind each cause (thresholds chosen to read plainly, not tuned).
TEXT_WORDS = 12  # a "text-only template": at least this many words read ...
TEXT_SATURATION = 0.12  # ... on a nearly colourless picture (tweets, screenshots, captions)
DARK, BRIGHT = 50.0, 215.0  # mean brightness out of 255
CROSSOVER = 0.25  # both games get at least this probability from the image
NEAR_DUPLICATE = 0.95  # embedding cosine to a training meme
LOW_RES = 200  # shorter side in pixels


@dataclass
class Mistake:
    index: int  # row in the test split
    loss: float


def losses(data: ReportData) -> np.ndarray:
    """Per test meme, -log P(true label) under the probabilities the bot shows; for a meme the
    OOD rule rejected (its probabilities did not decide), -log(1 - how unusual it looked)."""
    out = []
    for it in data.parts["test"].items:
        p = it.prediction
        right = p.label == it.label
        q = (
            (p.confidence if right else 1.0 - p.confidence)
            if p.is_ood
            else p.probabilities.get(it.label, 0.0)
        )
        out.append(-np.log(min(max(q, 1e-9), 1.0)))
    return np.array(out)


def causes(data: ReportData) -> tuple[list[set[str]], dict[str, str]]:
    """Per test meme, the causes its measured properties point to; and what each cause means."""
    test = data.parts["test"]
    stats = measure(test.samples, data.cache_dir)
    train = data.parts["train"]
    near = np.zeros(len(test.samples))
    near_label: list[str] = [""] * len(test.samples)
    if len(train.samples) and len(test.samples):
        sims = l2_normalize(test.x) @ l2_normalize(train.x).T
        best = sims.argmax(axis=1)
        near = sims[np.arange(len(best)), best]
        near_label = [train.samples[j].label for j in best]
    games = data.games
    out: list[set[str]] = []
    for i, it in enumerate(test.items_image):
        found: set[str] = set()
        if len(words(test.texts[i])) >= TEXT_WORDS and stats.saturation[i] < TEXT_SATURATION:
            found.add("text-only template")
        if stats.brightness[i] < DARK:
            found.add("dark")
        if stats.brightness[i] > BRIGHT:
            found.add("bright")
        if (
            len(games) >= 2
            and sorted(it.prediction.probabilities.get(g, 0.0) for g in games)[-2] >= CROSSOVER
        ):
            found.add("crossover")
        if near[i] >= NEAR_DUPLICATE:
            found.add(
                "near-duplicate of a training meme"
                + (" labelled otherwise" if near_label[i] != it.label else "")
            )
        if min(stats.width[i], stats.height[i]) < LOW_RES:
            found.add("low resolution")
        out.append(found or {"none of these"})
    meaning = {
        "text-only template": (
            f">= {TEXT_WORDS} words read on a nearly colourless picture "
            f"(saturation < {TEXT_SATURATION})"
        ),
        "dark": f"mean brightness < {DARK:.0f}/255",
        "bright": f"mean brightness > {BRIGHT:.0f}/255",
        "crossover": f"the image gives both games >= {CROSSOVER:.0%} (art mixing the two)",
        "near-duplicate of a training meme": (
            f"embedding cosine >= {NEAR_DUPLICATE} to a training meme of the same label"
        ),
        "near-duplicate of a training meme labelled otherwise": (
            f"embedding cosine >= {NEAR_DUPLICATE} to a training meme with another label"
        ),
        "low resolution": f"shorter side < {LOW_RES} px",
        "none of these": "no measured property stands out",
    }
    return out, meaning


def build(data: ReportData, options: ReportOptions) -> Section:
    sec = Section("mistakes", "What does it get wrong, and why?")
    test = data.parts["test"]
    wrong = [i for i, it in enumerate(test.items) if it.prediction.label != it.label]
    if not test.items:
        sec.blocks.append(Paragraph("The test split is empty: no mistakes to show.", "note"))
        return sec
    loss = losses(data)
    worst = sorted(wrong, key=lambda i: -loss[i])[: options.mistakes]
    sec.blocks.append(
        Paragraph(
            f"{len(wrong)} of {len(test.items)} test memes are labelled wrong. The gallery shows "
            "the "
            f"{len(worst)} the model was most sure about (highest loss, -log P(true label))."
        )
    )
    heat: list[str] = [""] * len(worst)
    if options.gradcam and worst:
        classes = [data.labels.index(test.items[i].prediction.label) for i in worst]
        heat = gradcam_uris(
            data.model,
            [test.samples[i].path for i in worst],
            classes,
            data.meta.preprocess_config(),
        )
    elif worst:
        sec.blocks.append(
            Paragraph(f"Grad-CAM heat maps were left out of this report. {options.note}", "note")
        )
    found, meaning = causes(data)
    cards = []
    for k, i in enumerate(worst):
        it = test.items[i]
        read = " ".join(sorted(words(test.texts[i])))
        cards.append(
            Card(
                thumbnail(test.samples[i].path),
                [
                    f"true: {it.label} · predicted: {it.prediction.label} "
                    f"({it.prediction.confidence:.0%})",
                    f"loss {loss[i]:.2f}"
                    + (" · unlike any known meme (OOD)" if it.prediction.is_ood else ""),
                    "words read: "
                    + (read[:160] + ("…" if len(read) > 160 else "") if read else "(none)"),
                    "causes: " + ", ".join(sorted(found[i])),
                    test.samples[i].path.name,
                ],
                heat[k],
            )
        )
    sec.blocks.append(
        Gallery(
            cards,
            "Each meme beside its Grad-CAM heat map (red: the regions that pushed the "
            "model towards the label it chose)."
            if options.gradcam
            else "",
            "worst_mistakes",
        )
    )
    names = list(meaning)
    right = [i for i in range(len(test.items)) if i not in set(wrong)]
    rows = []
    for name in names:
        n_wrong = sum(name in found[i] for i in wrong)
        n_right = sum(name in found[i] for i in right)
        if n_wrong or n_right:
            rate = n_wrong / (n_wrong + n_right)
            rows.append([name, str(n_wrong), str(n_right), f"{rate:.0%}", meaning[name]])
    sec.blocks.append(
        Table(
            ["cause", "mistakes", "right answers", "error rate", "measured as"],
            rows,
            f"A meme can have several causes. Overall error rate on the test split: "
            f"{len(wrong) / len(test.items):.0%}; a cause whose error rate is well above it "
            f"explains mistakes.",
        )
    )
    data.summary["mistakes"] = {n: sum(n in found[i] for i in wrong) for n in names}
    data.summary["n_wrong"] = len(wrong)
    return sec
