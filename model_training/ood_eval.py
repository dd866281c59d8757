"""How well each "other" rule holds on kinds of image it never saw: leave-one-source-out.

For every source of "other" images (and any extra unseen set, such as the genshin folder), a
head is trained on cached embeddings without that source, every candidate score is fitted on
the same training rows, and the held-out source is scored against the test split's game memes.
Thresholds come from the validation game memes, as in production, so "caught at 95% kept" is
what the bot would do. Candidates are chosen by the worst and the mean source, not by
validation on kinds seen in training (which favours whatever fits those kinds best).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from inference.metrics import roc_auc
from inference.ood import OODScorer, l2_normalize
from model_training.calibrate import FittedHead
from model_training.head import HeadConfig, train_head


@dataclass(frozen=True)
class Inputs:
    """What a score sees of some images: their image embeddings and, when the words are
    measured, the sentence encoder's embedding of the words read from each (OCR) and how many
    readable words (`inference.text.words`) it holds."""

    x: np.ndarray
    text: np.ndarray | None = None
    n_words: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Inputs:
        return Inputs(
            self.x[rows],
            None if self.text is None else self.text[rows],
            None if self.n_words is None else self.n_words[rows],
        )

    def has_text(self, min_words: int) -> np.ndarray:
        if self.n_words is None:
            return np.zeros(len(self.x), bool)
        return np.asarray(self.n_words >= min_words)

    def __len__(self) -> int:
        return len(self.x)


# A candidate: fitted on one fold's training rows, then scores any rows (higher = less like a
# game meme; NaN where the candidate has nothing to say, e.g. a text score on an image without
# readable words).
Scorer = Callable[[Inputs], np.ndarray]


@dataclass(frozen=True)
class Fold:
    """What one candidate may learn from: training rows and labels (indices into labels)."""

    train: Inputs
    y: np.ndarray
    labels: list[str]
    reject_label: str
    head: torch.nn.Linear
    val_games: Inputs  # in-distribution validation memes: z-scores and thresholds

    @property
    def x(self) -> np.ndarray:
        return self.train.x

    @property
    def games(self) -> list[int]:
        return [i for i, lab in enumerate(self.labels) if lab != self.reject_label]

    def logits(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.head(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def p_other_logit(fold: Fold) -> Scorer:
    """log P(other) - log P(best game): the 3-way head's own belief, on an unbounded scale."""
    ri = fold.labels.index(fold.reject_label)

    def score(inp: Inputs) -> np.ndarray:
        lp = _log_softmax(fold.logits(inp.x))
        return lp[:, ri] - lp[:, fold.games].max(axis=1)

    return score


def energy(fold: Fold) -> Scorer:
    scorer = OODScorer(method="energy", logit_index=fold.games)
    return lambda inp: scorer.score(fold.logits(inp.x).astype(np.float32), inp.x).astype(
        np.float64
    )


def knn(fold: Fold, k: int = 10) -> Scorer:
    bank = l2_normalize(fold.x[np.isin(fold.y, fold.games)]).astype(np.float32)
    scorer = OODScorer(method="knn", k=k, bank=bank)
    return lambda inp: scorer.score(np.zeros((len(inp), 1), np.float32), inp.x).astype(np.float64)


def knn_contrast(fold: Fold, k: int = 10) -> Scorer:
    """kNN distance to game memes minus kNN distance to known "other" images: near a known
    kind of other counts against a game as much as far from every game meme does."""
    game_bank = l2_normalize(fold.x[np.isin(fold.y, fold.games)]).astype(np.float32)
    other_bank = l2_normalize(fold.x[~np.isin(fold.y, fold.games)]).astype(np.float32)

    def kth(bank: np.ndarray, x: np.ndarray) -> np.ndarray:
        sims = l2_normalize(x.astype(np.float32)) @ bank.T
        kk = min(k, bank.shape[0])
        return -np.partition(-sims, kk - 1, axis=1)[:, kk - 1]

    return lambda inp: (kth(other_bank, inp.x) - kth(game_bank, inp.x)).astype(np.float64)


# The words read from an image (issue 24): the sentence encoder's embedding of its OCR text.
# Each text score is NaN on images without readable words, where the image parts speak alone.


MIN_WORDS = 2  # the word model's own rule (inference.text.TextModel.min_words)


def _with_text(fold: Fold, rows: np.ndarray, min_words: int) -> tuple[np.ndarray, np.ndarray]:
    """The training rows among `rows` (a mask) that carry readable words: (text, mask)."""
    if fold.train.text is None:
        raise ValueError("a text candidate needs Rows with text embeddings")
    keep = rows & fold.train.has_text(min_words)
    return fold.train.text[keep], keep


def _text_scores(
    inp: Inputs, fn: Callable[[np.ndarray], np.ndarray], min_words: int
) -> np.ndarray:
    out = np.full(len(inp), np.nan)
    has = inp.has_text(min_words)
    if inp.text is not None and has.any():
        out[has] = fn(inp.text[has])
    return out


def text_knn(fold: Fold, k: int = 10, min_words: int = MIN_WORDS) -> Scorer:
    """1 - cosine of the words' embedding to the k-th nearest training game meme's words."""
    bank, _ = _with_text(fold, np.isin(fold.y, fold.games), min_words)
    bank = l2_normalize(bank.astype(np.float32))

    def far(t: np.ndarray) -> np.ndarray:
        sims = l2_normalize(t.astype(np.float32)) @ bank.T
        kk = min(k, bank.shape[0])
        return 1.0 - (-np.partition(-sims, kk - 1, axis=1)[:, kk - 1]).astype(np.float64)

    return lambda inp: _text_scores(inp, far, min_words)


def text_p_other(fold: Fold, min_words: int = MIN_WORDS) -> Scorer:
    """A logistic regression on the words' embedding, game meme vs known "other" (training
    images with words): its log-odds of "other"."""
    from sklearn.linear_model import LogisticRegression

    emb, keep = _with_text(fold, np.ones(len(fold.y), bool), min_words)
    is_other = ~np.isin(fold.y[keep], fold.games)
    clf = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced").fit(emb, is_other)
    return lambda inp: _text_scores(
        inp, lambda t: clf.decision_function(t).astype(np.float64), min_words
    )


def text_doubt(fold: Fold, min_words: int = MIN_WORDS) -> Scorer:
    """The doom-vs-AC text head's own doubt: minus the size of its log-odds (words that say
    nothing about either game)."""
    from sklearn.linear_model import LogisticRegression

    emb, keep = _with_text(fold, np.isin(fold.y, fold.games), min_words)
    clf = LogisticRegression(C=1.0, max_iter=5000).fit(emb, fold.y[keep])
    return lambda inp: _text_scores(inp, lambda t: -np.abs(clf.decision_function(t)), min_words)


def _zscored(parts: Sequence[Callable[[Fold], Scorer]], fold: Fold) -> Scorer:
    """The parts fitted on the fold, as one (parts x rows) matrix of scores, each z-scored on
    the validation game memes (NaN where a part has no say on a row)."""
    fitted = [p(fold) for p in parts]
    stats = [(np.nanmean(r), np.nanstd(r) + 1e-9) for r in (f(fold.val_games) for f in fitted)]

    def zscores(inp: Inputs) -> np.ndarray:
        return np.stack([(f(inp) - m) / s for f, (m, s) in zip(fitted, stats, strict=True)])

    return zscores


def zmean(
    *parts: Callable[[Fold], Scorer], weights: Sequence[float] | None = None
) -> Callable[[Fold], Scorer]:
    """(Weighted) mean of the parts, each z-scored on the validation game memes (one common
    scale); a part that says nothing on a row (NaN: a text score without words) is left out of
    that row's mean."""
    w = np.asarray(weights if weights is not None else [1.0] * len(parts), np.float64)[:, None]

    def build(fold: Fold) -> Scorer:
        zscores = _zscored(parts, fold)

        def score(inp: Inputs) -> np.ndarray:
            z = zscores(inp)
            seen = ~np.isnan(z)
            # rows where every part is NaN stay NaN
            total = (np.where(seen, z, 0.0) * w).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(total / (seen * w).sum(axis=0), np.float64)

        return score

    return build


def zmax(*parts: Callable[[Fold], Scorer]) -> Callable[[Fold], Scorer]:
    """The largest of the parts, each z-scored on the validation game memes: an image is as
    unusual as its most unusual evidence (a part without a say on a row, NaN, is skipped).
    Thresholded, this rejects what any part alone would, on a shared budget."""

    def build(fold: Fold) -> Scorer:
        zscores = _zscored(parts, fold)

        def score(inp: Inputs) -> np.ndarray:
            z = zscores(inp)
            return np.asarray(np.where(np.isnan(z), -np.inf, z).max(axis=0), np.float64)

        return score

    return build


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[Fold], Scorer]
    note: str = ""


def text_candidates() -> list[Candidate]:
    """The served image rule with the words' evidence (issue 24), for Rows with text: a text
    score joins the z-score mean where the image has readable words (image-only elsewhere),
    as a fourth equal part or as half of the score; or the larger of the image rule and the
    text score (`zmax`), with at least 2 (the word model's rule), 4, 8 or 12 readable words."""
    image = zmean(p_other_logit, energy, knn)

    def knn_words(n: int) -> Callable[[Fold], Scorer]:
        return lambda fold: text_knn(fold, min_words=n)

    return [
        *(Candidate(f"max(image,text_knn>={n}w)", zmax(image, knn_words(n)))
          for n in (2, 4, 8, 12)),
        Candidate("max(image,text_p_other>=8w)",
                  zmax(image, lambda fold: text_p_other(fold, min_words=8))),
        Candidate("p_other+energy+knn+text_knn", zmean(p_other_logit, energy, knn, text_knn),
                  "kNN of the OCR words' MiniLM embedding to game memes' words"),
        Candidate("p_other+energy+knn+text_p_other",
                  zmean(p_other_logit, energy, knn, text_p_other),
                  "MiniLM logistic regression, game vs known other"),
        Candidate("p_other+energy+knn+text_doubt", zmean(p_other_logit, energy, knn, text_doubt),
                  "the doom-vs-AC text head's doubt"),
        Candidate("image/2+text_knn/2", zmean(image, text_knn)),
        Candidate("image/3+text_knn*2/3", zmean(image, text_knn, weights=(1, 2))),
        Candidate("image/2+text_p_other/2", zmean(image, text_p_other)),
    ]


def default_candidates(imagenet: tuple[np.ndarray, np.ndarray] | None = None) -> list[Candidate]:
    """Every rule measured; `imagenet` = (weight, bias) of the backbone's own 1000-class head."""
    out = [
        Candidate("p_other", p_other_logit, "the 3-way head's P(other)"),
        Candidate("energy", energy, "-logsumexp of the game logits"),
        Candidate("knn", knn, "distance to the 10th nearest game meme"),
        Candidate("knn_contrast", knn_contrast, "kNN to games minus kNN to known other"),
        Candidate("energy+knn", zmean(energy, knn), "served before issue 15"),
        Candidate("p_other+knn", zmean(p_other_logit, knn)),
        Candidate("p_other+knn_contrast", zmean(p_other_logit, knn_contrast)),
        Candidate("p_other+energy", zmean(p_other_logit, energy)),
        Candidate("p_other+energy+knn", zmean(p_other_logit, energy, knn)),
    ]
    if imagenet is not None:
        w, b = imagenet

        def imagenet_knn(fold: Fold, k: int = 10) -> Scorer:
            # kNN in the space of ImageNet class probabilities: "comic book", "web site",
            # "screen" and the like describe a kind of image rather than its pixels.
            def feats(x: np.ndarray) -> np.ndarray:
                return np.exp(_log_softmax(x.astype(np.float64) @ w.T + b)).astype(np.float32)

            bank = l2_normalize(feats(fold.x[np.isin(fold.y, fold.games)]))

            def score(inp: Inputs) -> np.ndarray:
                sims = l2_normalize(feats(inp.x)) @ bank.T
                kk = min(k, bank.shape[0])
                return 1.0 - (-np.partition(-sims, kk - 1, axis=1)[:, kk - 1]).astype(np.float64)

            return score

        out += [
            Candidate("imagenet_knn", imagenet_knn, "kNN on the backbone's ImageNet probabilities"),
            Candidate("p_other+imagenet_knn", zmean(p_other_logit, imagenet_knn)),
        ]
    return out


@dataclass
class SourceResult:
    source: str
    n: int
    auroc: dict[str, float] = field(default_factory=dict)
    caught: dict[str, dict[float, float]] = field(
        default_factory=dict
    )  # candidate -> keep -> share caught
    kept: dict[str, dict[float, float]] = field(default_factory=dict)  # test game memes kept
    with_text: float = 0.0  # share of the held-out source with readable words


@dataclass(frozen=True)
class Rows:
    """Embeddings with their label and source, split as the model's training split them;
    optionally the sentence encoder's embedding of each image's OCR words and their count of
    readable words."""

    x: np.ndarray
    label: np.ndarray  # str
    source: np.ndarray  # str
    part: np.ndarray  # "train" / "val" / "test" / "unseen"
    text: np.ndarray | None = None
    n_words: np.ndarray | None = None

    @property
    def inputs(self) -> Inputs:
        return Inputs(self.x, self.text, self.n_words)

    def held_out(self, source: str) -> np.ndarray:
        """The rows of one source; a name ending in "-" is a prefix ("genshin-")."""
        return np.array(
            [s == source or (source.endswith("-") and s.startswith(source)) for s in self.source]
        )

    def fit_split(self, held: np.ndarray, labels: list[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(train, val, y_train, y_val) without the held-out rows."""
        train, val = (self.part == "train") & ~held, (self.part == "val") & ~held
        return (train, val, np.array([labels.index(lab) for lab in self.label[train]]),
                np.array([labels.index(lab) for lab in self.label[val]]))


def fit_fold(
    rows: Rows, held: np.ndarray, labels: list[str], reject_label: str, seed: int = 0
) -> Fold:
    train, val, y, y_val = rows.fit_split(held, labels)
    head, _ = train_head(rows.x[train], y, rows.x[val], y_val, len(labels), HeadConfig(seed=seed))
    games = np.isin(rows.label, [lab for lab in labels if lab != reject_label])
    every = rows.inputs
    return Fold(every.take(train), y, labels, reject_label, head,
                every.take((rows.part == "val") & games))


def leave_one_source_out(
    rows: Rows,
    sources: Sequence[str],
    candidates: Sequence[Candidate],
    labels: list[str],
    reject_label: str = "other",
    keeps: Sequence[float] = (0.95, 0.97),
    progress: Callable[[str], None] | None = None,
) -> list[SourceResult]:
    """One fold per held-out source; a source name may be a prefix ("genshin-" = all genshin
    art)."""
    games = np.isin(rows.label, [lab for lab in labels if lab != reject_label])
    test_games = games & (rows.part == "test")
    results = []
    for source in sources:
        held = rows.held_out(source)
        if not held.any():
            raise ValueError(f"no image of source {source!r}")
        if progress:
            progress(source)
        fold = fit_fold(rows, held, labels, reject_label)
        res = SourceResult(source, int(held.sum()))
        res.with_text = float(rows.inputs.has_text(MIN_WORDS)[held].mean())
        every = rows.inputs
        for cand in candidates:
            score = cand.build(fold)
            s_val, s_in, s_out = (
                score(fold.val_games),
                score(every.take(test_games)),
                score(every.take(held)),
            )
            res.auroc[cand.name] = roc_auc(s_out, s_in)
            res.caught[cand.name], res.kept[cand.name] = {}, {}
            for keep in keeps:
                thr = float(np.quantile(s_val, keep))
                res.caught[cand.name][keep] = float((s_out > thr).mean())
                res.kept[cand.name][keep] = float((s_in <= thr).mean())
        results.append(res)
    return results


def summarize(
    results: Sequence[SourceResult], candidates: Sequence[Candidate]
) -> dict[str, dict[str, float]]:
    """Per candidate: worst and mean source AUROC, and mean caught at each keep level."""
    out = {}
    for cand in candidates:
        aucs = [r.auroc[cand.name] for r in results]
        row = {"worst_auroc": float(min(aucs)), "mean_auroc": float(np.mean(aucs))}
        for keep in results[0].caught[cand.name]:
            row[f"caught@{int(keep * 100)}"] = float(
                np.mean([r.caught[cand.name][keep] for r in results])
            )
            row[f"kept@{int(keep * 100)}"] = float(
                np.mean([r.kept[cand.name][keep] for r in results])
            )
        out[cand.name] = row
    return out


def best_by_worst_source(summary: dict[str, dict[str, float]]) -> str:
    """The best ranking on the hardest source: the best worst-source AUROC, ties by the mean."""
    return max(
        summary, key=lambda n: (round(summary[n]["worst_auroc"], 3), summary[n]["mean_auroc"])
    )


@dataclass
class ServedResult:
    source: str
    method: str
    caught: float  # share of the held-out source the bot would call "other"
    kept: float  # share of the test split's game memes it would still label a game


def served_rule(
    rows: Rows,
    sources: Sequence[str],
    methods: Sequence[str],
    labels: list[str],
    reject_label: str = "other",
    preprocess: dict | None = None,
) -> list[ServedResult]:
    """What the bot would do: the pipeline's own head, calibration and decision rule (P(other)
    threshold or OOD threshold, within the pipeline's rejection budget) per held-out source."""
    from inference.classifier import RawOutput, decide
    from inference.metadata import ModelMeta
    from inference.preprocess import PreprocessConfig
    from model_training.calibrate import fit_calibrated_head

    pre = preprocess or ModelMeta.preprocess_dict(PreprocessConfig())
    games = np.isin(rows.label, [lab for lab in labels if lab != reject_label])
    test_games = games & (rows.part == "test")
    out = []
    for source in sources:
        held = rows.held_out(source)
        train, val, y_tr, y_va = rows.fit_split(held, labels)
        def other_share(fitted: FittedHead, x: np.ndarray) -> float:
            preds = decide(RawOutput(fitted.logits(x), x), fitted.meta, fitted.scorer)
            return float(np.mean([p.label == reject_label for p in preds]))

        for method in methods:
            fitted = fit_calibrated_head(
                labels, reject_label, rows.x[train], y_tr, rows.x[val], y_va, pre, method=method
            )

            out.append(
                ServedResult(
                    source,
                    method,
                    other_share(fitted, rows.x[held]),
                    1 - other_share(fitted, rows.x[test_games]),
                )
            )
    return out


def served_candidates(
    rows: Rows,
    sources: Sequence[str],
    candidates: Sequence[Candidate],
    labels: list[str],
    reject_label: str = "other",
    preprocess: dict | None = None,
    keep: float = 0.96,
) -> list[ServedResult]:
    """The served decision with a candidate score in place of the model's OOD method: the
    calibrated head's P(other) threshold (half the rejection budget), then the candidate's
    threshold on the validation game memes left (`calibrate_threshold`, as `calibrate` sets
    it). Candidates the exported model cannot compute yet (text scores) are judged here by
    what the bot would do, beside the image rule through the same code."""
    from inference.classifier import softmax
    from inference.metadata import ModelMeta
    from inference.preprocess import PreprocessConfig
    from model_training.calibrate import calibrate_threshold, fit_calibrated_head

    pre = preprocess or ModelMeta.preprocess_dict(PreprocessConfig())
    games = np.isin(rows.label, [lab for lab in labels if lab != reject_label])
    test_games = games & (rows.part == "test")
    ri = labels.index(reject_label)
    every = rows.inputs
    out = []
    for source in sources:
        held = rows.held_out(source)
        train, val, y_tr, y_va = rows.fit_split(held, labels)
        fitted = fit_calibrated_head(
            labels, reject_label, rows.x[train], y_tr, rows.x[val], y_va, pre
        )
        fold = Fold(every.take(train), y_tr, labels, reject_label, fitted.head,
                    every.take(val & games))

        def head_rejects(inp: Inputs, fitted: FittedHead = fitted) -> np.ndarray:
            p = softmax(fitted.logits(inp.x.astype(np.float32)), fitted.meta.temperature)
            return np.asarray(p[:, ri] >= fitted.meta.ood.other_threshold)

        kept_val = ~head_rejects(fold.val_games)
        for cand in candidates:
            score = cand.build(fold)
            thr = calibrate_threshold(score(fold.val_games), kept_val, keep)

            def other_share(inp: Inputs, score: Scorer = score, thr: float = thr) -> float:
                return float(np.mean(head_rejects(inp) | (score(inp) > thr)))

            out.append(ServedResult(source, cand.name, other_share(every.take(held)),
                                    1 - other_share(every.take(test_games))))
    return out


def served_summary(results: Sequence[ServedResult]) -> dict[str, dict[str, float]]:
    """Per method: worst and mean share caught over the held-out sources, mean share kept."""
    out = {}
    for method in dict.fromkeys(r.method for r in results):
        rs = [r for r in results if r.method == method]
        out[method] = {
            "worst_caught": min(r.caught for r in rs),
            "mean_caught": float(np.mean([r.caught for r in rs])),
            "mean_kept": float(np.mean([r.kept for r in rs])),
            "n_sources": len(rs),
        }
    return out


def choose_rule(
    summary: dict[str, dict[str, float]], min_kept: float = 0.95, noise: float = 0.05
) -> str:
    """The method to serve, judged on what the bot does with kinds it never saw: among methods
    keeping at least `min_kept` of game memes, those whose worst source is caught within
    `noise` of the best worst source (a 95% interval on ~100 images of a source is about
    +-6 points), then the best mean share caught."""
    ok = {m: v for m, v in summary.items() if v["mean_kept"] >= min_kept} or summary
    best_worst = max(v["worst_caught"] for v in ok.values())
    near = {m: v for m, v in ok.items() if v["worst_caught"] >= best_worst - noise}
    return max(near, key=lambda m: near[m]["mean_caught"])


def nested_choice(results: Sequence[ServedResult]) -> list[ServedResult]:
    """The choice itself made without each held-out source: per source, the rule `choose_rule`
    picks on the other sources' results, and what that rule does on this source. A candidate
    list that wins only when the worst kind takes part in the choice (a cut tuned on it)
    shows here."""
    out = []
    sources = list(dict.fromkeys(r.source for r in results))
    for source in sources:
        pick = choose_rule(served_summary([r for r in results if r.source != source]))
        out.append(next(r for r in results if r.source == source and r.method == pick))
    return out
