"""Section "Learned or lucky?": a binomial test against the majority class, a label-permutation
test (the head refitted on shuffled labels, on cached embeddings) and trivial baselines."""

from __future__ import annotations

import time

import numpy as np
import torch

from inference.text import words
from model_training.evaluate import compute_metrics
from model_training.head import HeadConfig, train_heads
from model_training.report.context import ReportData, ReportOptions
from model_training.report.figures import figure
from model_training.report.image_stats import measure
from model_training.report.metrics import pct
from model_training.report.page import Paragraph, Section, Table


def permutation_test(
    data: ReportData, n: int, seed: int = 0, chunk: int = 100
) -> tuple[float, np.ndarray, float]:
    """(observed accuracy, null accuracies, p-value). The null: heads fitted exactly as the real one
    (`train_heads`, the pipeline's head training), on the same embeddings, with the training and
    validation labels shuffled; the statistic is the head's own test accuracy."""
    rng = np.random.default_rng(seed)
    tr, va, te = data.parts["train"], data.parts["val"], data.parts["test"]
    y_tr, y_va, y_te = data.y_index("train"), data.y_index("val"), data.y_index("test")
    rows_tr = [y_tr] + [rng.permutation(y_tr) for _ in range(n)]
    rows_va = [y_va] + [rng.permutation(y_va) for _ in range(n)]
    accs = []
    for i in range(0, n + 1, chunk):
        fitted = train_heads(
            tr.x,
            np.stack(rows_tr[i : i + chunk]),
            va.x,
            np.stack(rows_va[i : i + chunk]),
            len(data.labels),
            HeadConfig(seed=seed),
        )
        with torch.no_grad():
            accs += [
                float((head(torch.from_numpy(te.x)).numpy().argmax(axis=1) == y_te).mean())
                for head, _ in fitted
            ]
    observed, null = accs[0], np.array(accs[1:])
    p = (1 + int((null >= observed).sum())) / (1 + n)
    return observed, null, p


def _null_figure(observed: float, null: np.ndarray, majority: float):
    from model_training.evaluate import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.hist(null, bins=25, color="#999", label=f"shuffled labels ({len(null)} refits)")
    ax.axvline(observed, color="#c0392b", linewidth=2, label=f"real labels: {observed:.3f}")
    ax.axvline(majority, color="#2c3e50", linestyle="--", label=f"majority class: {majority:.3f}")
    ax.set_xlabel("test accuracy of the refitted head")
    ax.set_ylabel("refits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int
) -> np.ndarray:
    """Class probabilities of a standardised logistic regression (the baselines' one model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(x_train, y_train)
    probs = np.zeros((len(x_test), n_classes))
    probs[:, clf.classes_] = clf.predict_proba(x_test)
    return probs


def _scores(data: ReportData, probs: np.ndarray) -> tuple[float, float]:
    """3-class accuracy and doom-vs-AC accuracy (argmax among the games, on game memes)."""
    y = data.y_index("test")
    acc = float((probs.argmax(axis=1) == y).mean())
    games = [data.labels.index(g) for g in data.games]
    on_games = np.isin(y, games)
    g_pred = (
        np.array(games)[probs[on_games][:, games].argmax(axis=1)]
        if on_games.any()
        else np.array([])
    )
    return acc, float((g_pred == y[on_games]).mean()) if on_games.any() else float("nan")


def baselines(data: ReportData) -> list[list[str]]:
    train = data.parts["train"].samples + data.parts["val"].samples
    test = data.parts["test"].samples
    y_tr = np.concatenate([data.y_index("train"), data.y_index("val")])
    y_te = data.y_index("test")
    rows = []
    majority = np.bincount(y_tr, minlength=len(data.labels)).argmax()
    probs = np.zeros((len(y_te), len(data.labels)))
    probs[:, majority] = 1.0
    rows.append(("majority class (" + data.labels[majority] + ")", _scores(data, probs)))
    s_tr, s_te = measure(train, data.cache_dir), measure(test, data.cache_dir)
    rows.append(
        (
            "colour histogram (64 bins), logistic regression",
            _scores(data, _fit_predict(s_tr.histogram, y_tr, s_te.histogram, len(data.labels))),
        )
    )
    rows.append(
        (
            "image size, aspect, brightness, saturation alone",
            _scores(
                data,
                _fit_predict(
                    s_tr.size_brightness(), y_tr, s_te.size_brightness(), len(data.labels)
                ),
            ),
        )
    )
    texts_tr = data.parts["train"].texts + data.parts["val"].texts
    texts_te = data.parts["test"].texts
    if sum(len(words(t)) >= 2 for t in texts_tr) >= 10:
        from sklearn.feature_extraction.text import CountVectorizer

        vec = CountVectorizer(binary=True, token_pattern=r"[a-z]{3,}", min_df=2)
        try:
            xw_tr = vec.fit_transform([" ".join(sorted(words(t))) for t in texts_tr]).toarray()
            xw_te = vec.transform([" ".join(sorted(words(t))) for t in texts_te]).toarray()
            rows.append(
                (
                    "the words alone (OCR), logistic regression",
                    _scores(data, _fit_predict(xw_tr, y_tr, xw_te, len(data.labels))),
                )
            )
        except ValueError:  # no word on two memes
            rows.append(("the words alone (OCR)", (float("nan"), float("nan"))))
    else:
        rows.append(
            (
                "the words alone (OCR): too few memes with readable text",
                (float("nan"), float("nan")),
            )
        )
    return [[name, pct(a), pct(g)] for name, (a, g) in rows]


def build(data: ReportData, options: ReportOptions) -> Section:
    sec = Section("lucky", "Did it learn, or was it lucky?")
    test = data.parts["test"]
    m = compute_metrics(test.items, data.labels, data.reject)
    if not m.get("n"):
        sec.blocks.append(Paragraph("The test split is empty: nothing to test.", "note"))
        return sec
    sec.blocks.append(
        Paragraph(
            "Binomial test: always answering the most common class would be right "
            f"{pct(m['majority_baseline'])} "
            f"of the time; the model is right {pct(m['accuracy'])} on {m['n']} test memes. If it "
            "were no better "
            "than that, a result this good would happen with probability p = "
            f"{m['p_value_vs_majority']:.2g}."
        )
    )
    data.summary["binomial_p"] = m["p_value_vs_majority"]
    if options.permutations > 0 and len(set(data.y_index("train").tolist())) > 1:
        t0 = time.perf_counter()
        observed, null, p = permutation_test(data, options.permutations, options.seed)
        seconds = time.perf_counter() - t0
        sec.blocks.append(
            figure(
                _null_figure(observed, null, m["majority_baseline"]),
                f"Label-permutation test: the head refitted {len(null)} times on shuffled labels "
                f"(same embeddings, same training code). Real labels: {observed:.3f}; shuffled: "
                f"mean {null.mean():.3f}, max {null.max():.3f}; p = {p:.3g} "
                f"(the smallest possible with {len(null)} refits is {1 / (1 + len(null)):.3g}).",
                "permutation_null",
            )
        )
        sec.blocks.append(
            Paragraph(
                "Why this matters: if the memes' pictures carried no information about their "
                "labels, a head trained "
                "on them would do as well with shuffled labels. It does not: what it learned is "
                "in the pictures, "
                f"not in luck. ({len(null)} refits took {seconds:.0f} s.)"
            )
        )
        if options.note and options.permutations < 200:
            sec.blocks.append(
                Paragraph(f"Only {options.permutations} permutations here. {options.note}", "note")
            )
        data.summary |= {
            "permutation_p": p,
            "permutations": len(null),
            "permutation_observed": observed,
            "permutation_null_mean": float(null.mean()),
            "permutation_null_max": float(null.max()),
            "permutation_seconds": seconds,
        }
    else:
        sec.blocks.append(Paragraph(f"The permutation test was left out. {options.note}", "note"))
    rows = baselines(data)
    mi = compute_metrics(test.items_image, data.labels, data.reject)
    rows += [
        ["the model, image alone", pct(mi["accuracy"]), pct(mi.get("game_accuracy"))],
        ["the model, image + words (served)", pct(m["accuracy"]), pct(m.get("game_accuracy"))],
    ]
    sec.blocks.append(
        Table(
            ["classifier (trained on train + validation)", "3-class accuracy", "doom vs AC"],
            rows,
            "Trivial baselines on the same test memes: a shortcut (colour, size, brightness) "
            "that matched the model would mean it learned the shortcut.",
        )
    )
    data.summary["baselines"] = {r[0]: r[1:] for r in rows}
    return sec
