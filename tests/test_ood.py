"""OOD scorers: fitted state survives saving, scores separate far-away points, thresholds keep
memes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from inference.ood import OODScorer
from model_training.calibrate import (
    DEFAULT_OOD_METHOD,
    OOD_METHODS,
    calibrate,
    calibrate_threshold,
    fit_scorer,
)

RNG = np.random.default_rng(0)


def _data(n: int = 200, d: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centres = np.stack([np.r_[np.full(d // 2, 3.0), np.zeros(d - d // 2)],
                        np.r_[np.zeros(d // 2), np.full(d - d // 2, 3.0)]])
    y = RNG.integers(0, 2, n)
    emb = centres[y] + RNG.normal(0, 1, (n, d))
    far = RNG.normal(0, 1, (50, d)) * 0.5 - 4.0
    return emb, y, far


@pytest.mark.parametrize("method", ["energy", "knn", "mahalanobis", "p_other", "energy+knn",
                                    "p_other+energy", "p_other+energy+knn"])
def test_scores_survive_save_and_load(method: str, tmp_path: Path) -> None:
    emb, y, _ = _data()
    logits = np.stack([emb[:, :8].sum(1), emb[:, 8:].sum(1), np.zeros(len(emb))], 1)
    scorer = fit_scorer(method, emb, y, [0, 1])
    if "+" in method:
        scorer.norm = np.array([[0.0, 1.0]] * len(method.split("+")))
    scorer.save(tmp_path / "ood.npz")
    again = OODScorer.load(tmp_path / "ood.npz")
    np.testing.assert_allclose(again.score(logits, emb), scorer.score(logits, emb),
                               rtol=1e-3, atol=1e-3)


def test_p_other_is_the_heads_belief_against_the_best_game() -> None:
    scorer = fit_scorer("p_other", np.zeros((4, 2)), np.array([0, 1, 0, 1]), [0, 1])
    logits = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 1.0]])
    s = scorer.score(logits, np.zeros((3, 2)))
    assert s[1] > s[2] > s[0] and s[2] == pytest.approx(0.0, abs=1e-6)
    # a model without a reject label has no P(other): nothing is rejected on it
    no_other = fit_scorer("p_other", np.zeros((4, 2)), np.array([0, 1, 0, 1]), [0, 1, 2])
    assert no_other.score(logits, np.zeros((3, 2))).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="unknown OOD method"):
        fit_scorer("p_other+magic", np.zeros((4, 2)), np.array([0, 1, 0, 1]), [0, 1])


def test_leave_one_source_out_scores_each_source_as_never_seen() -> None:
    from model_training.ood_eval import (
        Rows,
        best_by_worst_source,
        default_candidates,
        leave_one_source_out,
        summarize,
    )

    d = 16
    rng = np.random.default_rng(1)
    centres = {"doom": np.r_[np.full(8, 3.0), np.zeros(8)],
               "animal_crossing": np.r_[np.zeros(8), np.full(8, 3.0)],
               "far": np.full(d, -4.0), "near": np.r_[np.full(8, 1.5), np.full(8, 1.5)]}
    xs, labels, sources, parts = [], [], [], []
    for name, n in (("doom", 120), ("animal_crossing", 120), ("far", 60), ("near", 60)):
        xs.append(centres[name] + rng.normal(0, 1, (n, d)))
        labels += [name if name in ("doom", "animal_crossing") else "other"] * n
        sources += [name] * n
        parts += [("train", "val", "test")[i % 3] for i in range(n)]
    rows = Rows(np.concatenate(xs).astype(np.float32), np.array(labels), np.array(sources),
                np.array(parts))
    cands = [c for c in default_candidates() if c.name in ("p_other", "knn", "p_other+energy+knn")]
    results = leave_one_source_out(rows, ["far", "near"], cands,
                                   ["animal_crossing", "doom", "other"])
    far = results[0]
    assert far.source == "far" and far.n == 60
    assert far.auroc["knn"] > 0.99 and far.caught["knn"][0.95] > 0.9  # far from every game meme
    # thresholds from 80 validation memes, kept on 80 others
    assert 0.8 <= far.kept["knn"][0.95] <= 1.0
    summary = summarize(results, cands)
    assert set(summary) == {"p_other", "knn", "p_other+energy+knn"}
    assert summary["knn"]["worst_auroc"] <= summary["knn"]["mean_auroc"]
    assert best_by_worst_source(summary) in summary
    with pytest.raises(ValueError, match="no image of source"):
        leave_one_source_out(rows, ["nowhere"], cands, ["animal_crossing", "doom", "other"])


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_far_points_score_higher(method: str) -> None:
    emb, y, far = _data()
    scorer = fit_scorer(method, emb[:150], y[:150], [0, 1])
    zeros = np.zeros((1, 3))
    s_in = scorer.score(np.repeat(zeros, 50, 0), emb[150:])
    s_out = scorer.score(np.repeat(zeros, 50, 0), far)
    assert s_out.min() > np.median(s_in)


def test_threshold_keeps_the_requested_share() -> None:
    scores = np.linspace(0, 1, 1000)
    kept = np.ones(1000, bool)
    thr = calibrate_threshold(scores, kept, keep=0.96)
    assert (scores <= thr).mean() >= 0.96
    kept[:20] = False  # the classifier already calls 2% "other": the OOD rule gets the rest
    thr = calibrate_threshold(scores, kept, keep=0.96)
    assert ((scores <= thr) & kept).mean() >= 0.96 - 1e-9


def test_calibrate_fits_the_combined_score_on_validation() -> None:
    emb, y, far = _data(300)
    labels = ["a", "b", "other"]
    y3 = np.r_[y, np.full(len(far), 2)]
    e3 = np.r_[emb, far]
    logits = np.stack([e3[:, :8].sum(1), e3[:, 8:].sum(1), -e3.sum(1) / 4], 1)
    cal = calibrate(labels, "other", y3, e3, y3, logits, e3)
    assert (cal.ood.method == DEFAULT_OOD_METHOD == "p_other+energy+knn"
            and cal.scorer.norm is not None)
    assert cal.scorer.norm.shape == (3, 2)  # one (mean, sd) per part
    assert set(cal.val_auroc) == set(OOD_METHODS)
    s = cal.scorer.score(logits[: len(emb)], emb)
    assert (s <= cal.ood.threshold).mean() >= 0.9
    assert 0.05 < cal.temperature < 20


def test_out_of_fold_logits_join_the_p_other_tail() -> None:
    from model_training.calibrate import _softmax, other_quantile

    emb, y, far = _data(300)
    labels = ["a", "b", "other"]
    y3 = np.r_[y, np.full(len(far), 2)]
    e3 = np.r_[emb, far]
    logits = np.stack([e3[:, :8].sum(1), e3[:, 8:].sum(1), -e3.sum(1) / 4], 1)
    extra = np.stack([np.zeros(500), np.zeros(500), RNG.normal(0, 2, 500)], 1)
    cal = calibrate(labels, "other", y3, e3, y3, logits, e3, extra_id_logits=extra)
    p_val = _softmax(logits / cal.temperature)[np.isin(y3, [0, 1]), 2]
    p_extra = _softmax(extra / cal.temperature)[:, 2]
    expected = other_quantile(np.r_[p_val, p_extra], 0.02)
    assert cal.ood.other_threshold == pytest.approx(float(np.clip(expected, 0.3, 0.99)))


def test_the_served_rule_is_chosen_by_worst_then_mean_source() -> None:
    from model_training.ood_eval import ServedResult, choose_rule, served_summary

    results = [ServedResult(src, m, caught, kept) for src, m, caught, kept in (
        ("a", "steady", 0.14, 0.97), ("b", "steady", 0.50, 0.97),
        ("a", "better mean", 0.12, 0.97), ("b", "better mean", 0.70, 0.97),  # worst within noise
        ("a", "fails a source", 0.01, 0.97), ("b", "fails a source", 0.95, 0.97),
        ("a", "drops memes", 0.60, 0.90), ("b", "drops memes", 0.90, 0.90),  # keeps < 95%
    )]
    summary = served_summary(results)
    assert summary["steady"] == {"worst_caught": 0.14, "mean_caught": pytest.approx(0.32),
                                 "mean_kept": 0.97, "n_sources": 2}
    assert choose_rule(summary) == "better mean"
    assert choose_rule(summary, noise=0.0) == "steady"


def _rows_with_words(seed: int = 2):  # type: ignore[no-untyped-def]
    """Doom/AC images with words on their games; a 'talky' kind that looks like the games but
    whose words are about something else; a 'far' kind without words."""
    from model_training.ood_eval import Rows

    d, dt = 16, 8
    rng = np.random.default_rng(seed)
    look = {"doom": np.r_[np.full(8, 3.0), np.zeros(8)],
            "animal_crossing": np.r_[np.zeros(8), np.full(8, 3.0)],
            "talky": np.r_[np.full(8, 3.0), np.zeros(8)], "far": np.full(d, -4.0)}
    topic = {"doom": np.eye(dt)[0] * 3, "animal_crossing": np.eye(dt)[1] * 3,
             "talky": np.eye(dt)[5] * 3, "far": np.zeros(dt)}
    xs, ts, labels, sources, parts, n_words = [], [], [], [], [], []
    for name, n in (("doom", 150), ("animal_crossing", 150), ("talky", 60), ("far", 60)):
        xs.append(look[name] + rng.normal(0, 1, (n, d)))
        ts.append(topic[name] + rng.normal(0, 0.5, (n, dt)))
        labels += [name if name in ("doom", "animal_crossing") else "other"] * n
        sources += [name] * n
        parts += [("train", "val", "test")[i % 3] for i in range(n)]
        n_words += [0 if name == "far" else 10] * n
    return Rows(np.concatenate(xs).astype(np.float32), np.array(labels), np.array(sources),
                np.array(parts), np.concatenate(ts).astype(np.float32), np.array(n_words))


def test_a_text_score_speaks_only_where_the_image_has_words() -> None:
    from model_training.ood_eval import (
        Candidate,
        energy,
        fit_fold,
        knn,
        leave_one_source_out,
        p_other_logit,
        text_candidates,
        text_knn,
        zmean,
    )

    rows = _rows_with_words()
    labels = ["animal_crossing", "doom", "other"]
    fold = fit_fold(rows, rows.source == "talky", labels, "other")
    inp = rows.inputs
    far = inp.take(rows.source == "far")
    assert np.isnan(text_knn(fold)(far)).all()  # no words: no say
    # too few words for a cut: no say either
    assert np.isnan(text_knn(fold, min_words=11)(inp.take(rows.source == "talky"))).all()
    image, with_words = zmean(p_other_logit, energy, knn)(fold), zmean(
        p_other_logit, energy, knn, text_knn)(fold)
    np.testing.assert_allclose(with_words(far), image(far))  # the image parts alone
    talky_inputs = inp.take(rows.source == "talky")
    # a part weighted 0 does not count; weighted 1:1 it is the plain mean
    np.testing.assert_allclose(zmean(p_other_logit, text_knn, weights=(1, 0))(fold)(talky_inputs),
                               zmean(p_other_logit)(fold)(talky_inputs))
    np.testing.assert_allclose(zmean(p_other_logit, text_knn, weights=(2, 2))(fold)(talky_inputs),
                               zmean(p_other_logit, text_knn)(fold)(talky_inputs))

    cands = [Candidate("image", zmean(p_other_logit, energy, knn)),
             *[c for c in text_candidates() if c.name == "max(image,text_knn>=8w)"]]
    (talky,) = leave_one_source_out(rows, ["talky"], cands, labels)
    # the talky kind looks like doom, but its words are about something else
    assert talky.auroc["image"] < 0.7 < 0.95 < talky.auroc["max(image,text_knn>=8w)"]
    assert talky.with_text == 1.0


def test_candidates_as_served_reproduce_the_served_rule() -> None:
    from model_training.ood_eval import (
        default_candidates,
        served_candidates,
        served_rule,
        text_candidates,
    )

    rows = _rows_with_words()
    labels = ["animal_crossing", "doom", "other"]
    image = [c for c in default_candidates() if c.name == DEFAULT_OOD_METHOD]
    words = [c for c in text_candidates() if c.name == "max(image,text_knn>=8w)"]
    served = served_rule(rows, ["talky", "far"], [DEFAULT_OOD_METHOD], labels)
    as_served = served_candidates(rows, ["talky", "far"], image + words, labels)
    n_test_games = int(((rows.part == "test") & (rows.label != "other")).sum())
    for a in served:
        b = next(r for r in as_served if r.source == a.source and r.method == DEFAULT_OOD_METHOD)
        assert abs(a.caught - b.caught) <= 2 / 60 and abs(a.kept - b.kept) <= 2 / n_test_games
    by = {(r.source, r.method): r for r in as_served}
    with_words = by[("talky", "max(image,text_knn>=8w)")]
    assert with_words.caught > by[("talky", DEFAULT_OOD_METHOD)].caught
    assert with_words.kept >= 0.9


def test_the_nested_choice_is_made_without_the_held_out_source() -> None:
    from model_training.ood_eval import ServedResult, nested_choice

    results = [ServedResult(src, m, caught, 0.97) for src, m, caught in (
        ("a", "steady", 0.50), ("b", "steady", 0.50), ("c", "steady", 0.10),
        ("a", "tuned on c", 0.45), ("b", "tuned on c", 0.45), ("c", "tuned on c", 0.40),
    )]
    nested = {r.source: r.method for r in nested_choice(results)}
    # with c in the choice "tuned on c" wins (worst 0.40 vs 0.10); without it, never on c
    assert nested == {"a": "tuned on c", "b": "tuned on c", "c": "steady"}
