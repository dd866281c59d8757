"""How good is the classifier, and did it learn or get lucky? One run, one table per question.

On ../shared/data/memes (all of it), with the pipeline's own split, embeddings and calibration:
  1. doom-vs-AC accuracy: the issue's baseline (logistic regression on frozen Lite0 embeddings)
     vs our head, on the held-out test split and in 5-fold cross-validation;
  2. "other": a naive 3-class head vs our calibrated OOD rule (memes kept, other caught);
  3. leave-one-source-out: each 'other' source is held out of training in turn and scored as
     never-seen images (AUROC, share caught, memes kept);
  4. shortcut checks: the same test memes re-encoded at other sizes / aspect ratios / formats /
     brightness, as real posts come; accuracy should not move;
  5. optionally an exported model version (--model), evaluated through the production path;
  6. the words posted with a meme (captions); 7. the sentence encoder vs the bag of words
     (`--only-encoder` runs 7 alone; `--only-ood` runs 3 alone).

    python benchmarks/bench_model.py [--data ../shared/data/memes] [--model models/]
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from inference.classifier import RawOutput, decide  # noqa: E402
from inference.metadata import ModelMeta  # noqa: E402
from inference.metrics import wilson_interval  # noqa: E402
from inference.preprocess import PreprocessConfig, load_image, normalize, resize  # noqa: E402
from inference.text import TextModel, tesseract_available  # noqa: E402
from model_training.backbone import create_backbone  # noqa: E402
from model_training.calibrate import DEFAULT_OOD_METHOD, FittedHead, calibrate, fit_calibrated_head  # noqa: E402
from model_training.data import Sample, duplicate_groups, scan_folder, split  # noqa: E402
from model_training.embeddings import EmbeddingCache, cache_key, embed  # noqa: E402
from model_training.evaluate import EvalItem, compute_metrics  # noqa: E402
from model_training.text_model import OcrCache, fit_text_model  # noqa: E402

GAMES = ("animal_crossing", "doom")


def fit(labels: list[str], x_tr, y_tr, x_va, y_va, pre: PreprocessConfig, seed: int = 0,
        method: str = DEFAULT_OOD_METHOD) -> FittedHead:
    return fit_calibrated_head(labels, "other", x_tr, y_tr, x_va, y_va,
                               ModelMeta.preprocess_dict(pre), seed, method)


def predict(f: FittedHead, x: np.ndarray, texts: list[str] | None = None,
            text_model: TextModel | None = None):
    with torch.no_grad():
        logits = f.head(torch.from_numpy(x)).numpy()
    raw = RawOutput(logits, x)
    if texts is not None and text_model is not None:
        raw.extra["text_shift"] = text_model.logit_shift(texts, f.meta.labels, f.meta.temperature)
    return decide(raw, f.meta, f.scorer)  # type: ignore[arg-type]


def words_model(part: list[Sample], ocr: OcrCache) -> TextModel | None:
    return fit_text_model(ocr.read(part, progress=False), [s.label for s in part], *GAMES)


def items(samples: list[Sample], preds) -> list[EvalItem]:
    return [EvalItem(s.path, s.label, p) for s, p in zip(samples, preds, strict=True)]


def pct(v: float) -> str:
    return f"{100 * v:5.1f}%"


def variant(img: Image.Image, kind: str) -> Image.Image:
    if kind == "landscape 640x360 PNG":
        out = img.resize((640, 360), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        out.save(buf, "PNG")
    elif kind == "portrait 480x854 JPEG q92":
        out = img.resize((480, 854), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=92)
    elif kind == "1080x1080 WebP":
        out = img.resize((1080, 1080), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        out.save(buf, "WEBP", quality=85)
    elif kind == "brightness equalised":
        luma = np.asarray(img.convert("L"), dtype=np.float32).mean()
        out = ImageEnhance.Brightness(img).enhance(128.0 / max(luma, 1.0))
        buf = io.BytesIO()
        out.save(buf, "PNG")
    else:
        raise ValueError(kind)
    return load_image(buf.getvalue())


def loso_table(args, samples, labels, sp, cache, backbone, pre) -> None:
    """Each 'other' source (all genshin art as one, plus the genshin folder) held out of training
    in turn: every candidate's AUROC and share caught at 95% / 97% of doom/AC kept, then what
    the served rule (head + calibration + decision, as `memebot train` fits it) does. With
    Tesseract, the image rule with the words' evidence too (issue 24: the sentence encoder's
    embedding of the OCR words; the manifest's captions are left out, since only the doom/AC
    memes carry one and "no caption" would give every "other" image away)."""
    import csv

    from model_training.backbone import imagenet_head
    from model_training.ood_eval import (
        Rows,
        best_by_worst_source,
        choose_rule,
        default_candidates,
        leave_one_source_out,
        nested_choice,
        served_candidates,
        served_rule,
        served_summary,
        summarize,
        text_candidates,
    )

    extra: list[Sample] = []
    genshin = args.data.parent / "genshin" / "MANIFEST.csv"
    if genshin.is_file():
        with genshin.open(newline="", encoding="utf-8") as fh:
            extra = [Sample(genshin.parent / r["path"], "other", r["sha256"], 0, "genshin-folder")
                     for r in csv.DictReader(fh)]
    parts = [("train", sp.train), ("val", sp.val), ("test", sp.test), ("unseen", extra)]
    rows_s = [(p, s) for p, ss in parts for s in ss]
    x = embed(backbone, [s for _, s in rows_s], pre, cache).astype(np.float32)
    text = n_words = None
    if tesseract_available():
        from inference.sentence import SentenceEncoder
        from inference.text import words
        from model_training.sentence_encoder import export_encoder

        ocr = OcrCache(args.cache_dir).read([s for _, s in rows_s], progress=False)
        n_words = np.array([len(words(t)) for t in ocr])
        encoder = SentenceEncoder(export_encoder(args.cache_dir / "bench-models"))
        text = encoder.embed(ocr)
    rows = Rows(x, np.array([s.label for _, s in rows_s]), np.array([s.source for _, s in rows_s]),
                np.array([p for p, _ in rows_s]), text, n_words)
    sources = sorted({s.source for s in samples
                      if s.label == "other" and not s.source.startswith("genshin")})
    sources.append("genshin-")  # the genshin art in other/ and the genshin folder: one unseen kind
    cands = default_candidates(imagenet_head()) + (text_candidates() if text is not None else [])
    t = time.perf_counter()
    results = leave_one_source_out(rows, sources, cands, labels)
    took = time.perf_counter() - t
    print("\n3. Leave-one-source-out: each source never trained on, scored against the test "
          "split's doom/AC memes")
    print("   AUROC per candidate (higher: the source ranks as less like a game meme)")
    names = [c.name for c in cands]
    w = max(len(n) for n in names) + 1
    print(f"{'candidate':<{w}} " + " ".join(f"{r.source.rstrip('-')[:12]:>12}" for r in results)
          + f" {'worst':>6} {'mean':>6} {'caught@95':>9} {'worst':>6} {'caught@97':>9}"
          f" {'worst':>6}")
    summary = summarize(results, cands)
    for n in names:
        s = summary[n]
        print(f"{n:<{w}} " + " ".join(f"{r.auroc[n]:>12.3f}" for r in results)
              + f" {s['worst_auroc']:>6.3f} {s['mean_auroc']:>6.3f} {pct(s['caught@95']):>9} "
              f"{pct(min(r.caught[n][0.95] for r in results)):>6} {pct(s['caught@97']):>9} "
              f"{pct(min(r.caught[n][0.97] for r in results)):>6}")
    print("   n per source: " + ", ".join(f"{r.source.rstrip('-')} {r.n}" for r in results))
    if text is not None:
        print("   with readable words (OCR, >= 2 words): "
              + ", ".join(f"{r.source.rstrip('-')} {pct(r.with_text).strip()}" for r in results)
              + f"; test doom/AC memes "
              f"{pct(np.mean(n_words[(rows.part == 'test') & (rows.label != 'other')] >= 2))}")
    print(f"   best ranking on the worst source (AUROC; ties: mean): "
          f"{best_by_worst_source(summary)}; {took:.0f} s for "
          f"{len(sources)} folds x {len(cands)} candidates")
    methods = ("energy+knn", "energy", "p_other", "p_other+energy", DEFAULT_OOD_METHOD)
    served = served_rule(rows, sources, methods, labels, preprocess=ModelMeta.preprocess_dict(pre))
    print("\n   The served rule (P(other) threshold or OOD threshold, 4% rejection budget), "
          "per OOD method:")
    print(f"   {'method':<20} {'caught mean':>11} {'worst':>7} {'memes kept':>10}"
          "   per source caught")
    for m in methods:
        rs = [r for r in served if r.method == m]
        print(f"   {m:<20} {pct(np.mean([r.caught for r in rs])):>11}"
              f" {pct(min(r.caught for r in rs)):>7} "
              f"{pct(np.mean([r.kept for r in rs])):>10}   "
              + ", ".join(f"{r.source.rstrip('-')} {pct(r.caught).strip()}" for r in rs))
    chosen = choose_rule(served_summary(served))
    print(f"   chosen (worst source within 5 points of the best, then the best mean; "
          f">= 95% kept): {chosen}; served default: {DEFAULT_OOD_METHOD}")
    if text is None:
        return
    # The words (issue 24): the served decision with each candidate score in place of the OOD
    # method, the image rule through the same code as the control (it reproduces the served
    # figures above), chosen by the same rule.
    image = next(c for c in cands if c.name == DEFAULT_OOD_METHOD)
    with_words = [image, *text_candidates()]
    served_w = served_candidates(rows, sources, with_words, labels,
                                 preprocess=ModelMeta.preprocess_dict(pre))
    print("\n   With the words read (OCR -> MiniLM), as served (P(other) threshold, then the "
          "score's threshold; 4% budget):")
    print("| rule | " + " | ".join(r.source.rstrip("-") for r in results)
          + " | mean | doom/AC kept |")
    print("|---|" + "---|" * (len(results) + 2))
    for c in with_words:
        rs = {r.source: r for r in served_w if r.method == c.name}
        res = {r.source: r for r in results}
        print(f"| {c.name} | " + " | ".join(
            f"{pct(rs[src].caught).strip()} / {res[src].auroc[c.name]:.3f}" for src in sources)
            + f" | {pct(np.mean([r.caught for r in rs.values()])).strip()} / "
            f"{np.mean([res[src].auroc[c.name] for src in sources]):.3f} | "
            f"{pct(np.mean([r.kept for r in rs.values()])).strip()} |")
    print("   (caught / AUROC per held-out source)")
    print(f"   chosen among these (same rule): {choose_rule(served_summary(served_w))}")
    nested = nested_choice(served_w)
    base = {r.source: r for r in served_w if r.method == DEFAULT_OOD_METHOD}
    print("   the choice made without the held-out source too (nested): "
          + ", ".join(f"{r.source.rstrip('-')} -> {r.method} {pct(r.caught).strip()} "
                      f"(image rule {pct(base[r.source].caught).strip()})" for r in nested)
          + f"; mean {pct(np.mean([r.caught for r in nested])).strip()} vs "
          f"{pct(np.mean([r.caught for r in base.values()])).strip()}")


def caption_table(args, samples, labels, sp, ours, xs, ys, ocr, pre) -> None:
    """Doom vs AC with the image alone, + words read (OCR), + the post's caption, + both; the word
    model fitted on OCR alone or on OCR and captions together; test split and 5-fold CV."""
    from inference.captions import read_captions

    captions = read_captions(args.data / "MANIFEST.csv")

    def cap(part: list[Sample]) -> list[str]:
        return [captions.get(s.path.resolve(), "") for s in part]

    def texts(part: list[Sample], kind: str) -> list[str] | None:
        read = ocr.read(part, progress=False)
        return {"image alone": None, "+ OCR": read, "+ caption": cap(part),
                "+ OCR + caption": [f"{a} {b}" for a, b in zip(read, cap(part), strict=True)]}[kind]

    def fitted(part: list[Sample], with_captions: bool) -> TextModel | None:
        read = ocr.read(part, progress=False)
        docs = ([f"{a} {b}" for a, b in zip(read, cap(part), strict=True)] if with_captions
                else read)
        return fit_text_model(docs, [s.label for s in part], *GAMES)

    kinds = ("image alone", "+ OCR", "+ caption", "+ OCR + caption")
    test_games = [s for s in sp.test if s.label in GAMES]
    groups = np.array(duplicate_groups(samples))
    y = np.array([labels.index(s.label) for s in samples])
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=args.seed)
    cv = list(folds.split(np.zeros(len(y)), y, groups))
    print(f"\n6. The words posted with a meme (doom/AC accuracy; captions: "
          f"{sum(1 for s in test_games if cap([s])[0])} of "
          f"{len(test_games)} test memes carry one)")
    print(f"{'word model fitted on':<22} "
          + " ".join(f"{k + ' test':>20} {'CV':>6}" for k in kinds))
    for with_captions in (False, True):
        tm = fitted(sp.train, with_captions)
        test = [compute_metrics(items(test_games, predict(ours, xs(test_games),
                                                          texts(test_games, k), tm)),
                                labels)["game_accuracy"]
                for k in kinds]
        cv_acc = {k: [] for k in kinds}
        for tr_i, te_i in cv:
            tr_s = [samples[i] for i in tr_i]
            te_g = [samples[i] for i in te_i if samples[i].label in GAMES]
            inner = split(tr_s, val_fraction=0.15, test_fraction=0.0, seed=args.seed)
            f = fit(labels, xs(inner.train), ys(inner.train), xs(inner.val), ys(inner.val), pre,
                    args.seed)
            tmf = fitted(inner.train, with_captions)
            for k in kinds:
                preds = predict(f, xs(te_g), texts(te_g, k), tmf)
                cv_acc[k].append(compute_metrics(items(te_g, preds), labels)["game_accuracy"])
        name = "OCR + titles (default)" if with_captions else "OCR alone (before)"
        print(f"{name:<22} " + " ".join(f"{pct(a):>20} {pct(np.mean(cv_acc[k])):>6}"
                                        for a, k in zip(test, kinds, strict=True)))


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar test on paired right/wrong answers."""
    from scipy.stats import binomtest

    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def encoder_table(args, samples, labels, sp, xs, ys, ocr, pre) -> None:
    """7. The sentence encoder (issue 24) vs today's bag of words, image + OCR + caption, through
    the production path (fit_text_model: mix and fusion weight by CV on out-of-fold image
    margins): doom/AC end to end (the right game and not sent to "other") and doom-vs-AC
    (which game), test split and 5-fold grouped CV, paired McNemar tests."""
    from inference.captions import read_captions
    from inference.sentence import SentenceEncoder
    from model_training.head import HeadConfig, out_of_fold_logits, train_head
    from model_training.sentence_encoder import export_encoder

    encoder = SentenceEncoder(export_encoder(args.cache_dir / "bench-models"))
    captions = read_captions(args.data / "MANIFEST.csv")
    gi = [labels.index(g) for g in GAMES]

    def docs(part: list[Sample]) -> list[str]:
        read = ocr.read(part, progress=False)
        return [f"{a} {captions.get(s.path.resolve(), '')}".strip()
                for a, s in zip(read, part, strict=True)]

    def run(train: list[Sample], val: list[Sample], test: list[Sample]
            ) -> tuple[dict[str, np.ndarray], str]:
        f = fit(labels, xs(train), ys(train), xs(val), ys(val), pre, args.seed)
        x_tr, y_tr = xs(train), ys(train)
        oof = out_of_fold_logits(x_tr, lambda rows: train_head(
            x_tr[rows], y_tr[rows], xs(val), ys(val), len(labels), HeadConfig(seed=args.seed))[0],
            args.seed)
        margin = (oof[:, gi[1]] - oof[:, gi[0]]) / f.meta.temperature
        tr_docs, te_docs = docs(train), docs(test)
        truth = np.array([s.label for s in test])
        out, chosen = {}, ""
        for name, tm in (
            ("image alone", None),
            ("bag of words (today)", fit_text_model(tr_docs, [s.label for s in train], *GAMES)),
            ("encoder (CV-chosen)", fit_text_model(tr_docs, [s.label for s in train], *GAMES,
                                                   encoder=encoder, image_margin=margin)),
        ):
            preds = predict(f, xs(test), te_docs, tm)
            which = np.array([max(GAMES, key=lambda g: p.probabilities[g]) for p in preds])
            out[name + " e2e"] = np.array([p.label for p in preds]) == truth
            out[name + " which"] = which == truth
            if tm is not None and tm.encoder is not None:
                chosen = f"{tm.mix}@{tm.weight}"
        return out, chosen

    test_games = [s for s in sp.test if s.label in GAMES]
    t0 = time.perf_counter()
    test, test_chosen = run(sp.train, sp.val, test_games)
    names = ("image alone", "bag of words (today)", "encoder (CV-chosen)")
    groups = np.array(duplicate_groups(samples))
    y = np.array([labels.index(s.label) for s in samples])
    cv_runs = []
    for tr_i, te_i in StratifiedGroupKFold(5, shuffle=True, random_state=args.seed).split(
            np.zeros(len(y)), y, groups):
        tr_s = [samples[i] for i in tr_i]
        te_g = [samples[i] for i in te_i if samples[i].label in GAMES]
        inner = split(tr_s, val_fraction=0.15, test_fraction=0.0, seed=args.seed)
        cv_runs.append(run(inner.train, inner.val, te_g))
    cv = {k: np.concatenate([r[0][k] for r in cv_runs]) for k in cv_runs[0][0]}
    print(f"\n7. The sentence encoder vs the bag of words (image + OCR + caption; test n="
          f"{len(test_games)}, CV n={len(cv['image alone e2e'])}); chosen mix@weight: test "
          f"{test_chosen}, CV {[r[1] for r in cv_runs]}")
    print("| words | test end to end | test which game | CV end to end | CV which game |")
    print("|---|---|---|---|---|")
    for n in names:
        print(f"| {n} | {pct(test[n + ' e2e'].mean())} | {pct(test[n + ' which'].mean())} | "
              f"{pct(cv[n + ' e2e'].mean())} | {pct(cv[n + ' which'].mean())} |")
    for kind in ("e2e", "which"):
        a, b = f"encoder (CV-chosen) {kind}", f"bag of words (today) {kind}"
        print(f"   paired McNemar, encoder vs today ({kind}): "
              f"test p={mcnemar_p(test[a], test[b]):.3g}, CV p={mcnemar_p(cv[a], cv[b]):.3g}")
    # latency of the served encoder, one text at a time
    texts = docs(test_games[:100])
    start = time.perf_counter()
    for t in texts:
        encoder.embed([t])
    ms = (time.perf_counter() - start) * 1000 / len(texts)
    size = sum(f.stat().st_size for f in encoder.folder.glob("encoder.int8.onnx*")) / 1e6
    print(f"   encoder: {ms:.1f} ms per meme's text (int8, 1 thread, {size:.0f} MB on disk); "
          f"section took {time.perf_counter() - t0:.0f} s")


def exported_pair(args, sp, before: Path, after: Path) -> None:
    """7b. Two exported model versions through the production path (Classifier: OCR read from
    the cache, the manifest's captions posted), on the test split: end to end, paired."""
    from inference.captions import read_captions
    from inference.classifier import Classifier, Prediction

    ocr = OcrCache(args.cache_dir)
    captions = read_captions(args.data / "MANIFEST.csv")
    test = sp.test
    caps = [captions.get(s.path.resolve()) for s in test]
    games = np.array([s.label in GAMES for s in test])
    truth = np.array([s.label for s in test])
    rows = {}
    for name, folder in (("before", before), ("after", after)):
        clf = Classifier(folder, precision="fp32", text_lookup=ocr.lookup(test))
        clf.predict([s.path for s in test[:8]], captions=caps[:8])  # warm-up
        start = time.perf_counter()
        preds = clf.predict([s.path for s in test], captions=caps)
        ms = (time.perf_counter() - start) * 1000 / len(test)
        labels_out = np.array([p.label if isinstance(p, Prediction) else "" for p in preds])
        rows[name] = (clf.version, labels_out == truth, ms,
                      clf.text_model.mix if clf.text_model else "none")
    print(f"\n7b. Exported versions through the production path, test split (n={len(test)}, "
          f"{int(games.sum())} doom/AC; OCR from the cache, captions posted)")
    print("| version | words | doom/AC end to end | 'other' right | 3-class | ms per meme |")
    print("|---|---|---|---|---|---|")
    for name in ("before", "after"):
        version, ok, ms, mix = rows[name]
        print(f"| {version} ({name}) | {mix} | {pct(ok[games].mean())} | {pct(ok[~games].mean())} "
              f"| {pct(ok.mean())} | {ms:.1f} |")
    a, b = rows["after"][1][games], rows["before"][1][games]
    print(f"   paired McNemar on doom/AC end to end: p={mcnemar_p(a, b):.3g} "
          f"(after right / before wrong {int(np.sum(a & ~b))}, the reverse {int(np.sum(~a & b))})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "memes")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "cache")
    ap.add_argument("--model", type=Path, default=None,
                    help="also evaluate this exported model version")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-encoder", action="store_true",
                    help="only section 7 (the sentence encoder vs the bag of words)")
    ap.add_argument("--only-ood", action="store_true",
                    help="only section 3 (each 'other' source held out, with and without words)")
    ap.add_argument("--pair", type=Path, nargs=2, default=None, metavar=("BEFORE", "AFTER"),
                    help="7b: two exported model versions through the production path")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    pre = PreprocessConfig()
    scan = scan_folder(args.data, progress=False)
    samples = scan.samples
    labels = sorted({s.label for s in samples})
    sp = split(samples, seed=args.seed)
    backbone = create_backbone().eval()
    cache = EmbeddingCache(args.cache_dir, cache_key("tf_efficientnet_lite0", pre))
    X = embed(backbone, samples, pre, cache)
    row = {s.sha256: i for i, s in enumerate(samples)}
    y = np.array([labels.index(s.label) for s in samples])

    def xs(part: list[Sample]) -> np.ndarray:
        return X[[row[s.sha256] for s in part]]

    def ys(part: list[Sample]) -> np.ndarray:
        return np.array([labels.index(s.label) for s in part])

    print(f"data: {scan.counts()} (skipped {len(scan.skipped)}); split train {len(sp.train)} / "
          f"val {len(sp.val)} / test {len(sp.test)}")
    if args.pair:
        exported_pair(args, sp, *args.pair)
    if args.only_encoder:
        encoder_table(args, samples, labels, sp, xs, ys, OcrCache(args.cache_dir), pre)
    if args.only_ood:
        loso_table(args, samples, labels, sp, cache, backbone, pre)
    if args.pair or args.only_encoder or args.only_ood:
        return

    # 1. doom vs AC
    game_ix = [labels.index(g) for g in GAMES]
    test_games = [s for s in sp.test if s.label in GAMES]
    trval = sp.train + sp.val
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000))
    g_tr = [s for s in trval if s.label in GAMES]
    lr.fit(xs(g_tr), [s.label for s in g_tr])
    base_acc = float((lr.predict(xs(test_games)) == np.array([s.label for s in test_games])).mean())
    ours = fit(labels, xs(sp.train), ys(sp.train), xs(sp.val), ys(sp.val), pre, args.seed)
    m_ours = compute_metrics(items(sp.test, predict(ours, xs(sp.test))), labels)
    # The default reads memes' text too (Tesseract, cached per sha256: ~2.5 min the first time).
    ocr = OcrCache(args.cache_dir) if tesseract_available() else None
    if ocr is not None:
        ocr.read(samples, progress=True)
        words_test = words_model(sp.train, ocr)
        m_text = compute_metrics(items(sp.test, predict(ours, xs(sp.test),
                                                        ocr.read(sp.test, progress=False),
                                                        words_test)), labels)
    cv_text: list[float] = []

    # 5-fold grouped CV of both on doom/AC (the 'other' images join training in ours)
    groups = np.array(duplicate_groups(samples))
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=args.seed)
    cv_base, cv_ours = [], []
    for tr_i, te_i in cv.split(X, y, groups):
        tr_s = [samples[i] for i in tr_i]
        te_g = [samples[i] for i in te_i if samples[i].label in GAMES]
        gtr = [s for s in tr_s if s.label in GAMES]
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000))
        clf.fit(xs(gtr), [s.label for s in gtr])
        cv_base.append(float((clf.predict(xs(te_g)) == np.array([s.label for s in te_g])).mean()))
        inner = split(tr_s, val_fraction=0.15, test_fraction=0.0, seed=args.seed)
        f = fit(labels, xs(inner.train), ys(inner.train), xs(inner.val), ys(inner.val), pre,
                args.seed)
        cv_ours.append(compute_metrics(items(te_g, predict(f, xs(te_g))), labels)["game_accuracy"])
        if ocr is not None:
            tm = words_model(inner.train, ocr)
            preds = predict(f, xs(te_g), ocr.read(te_g, progress=False), tm)
            cv_text.append(compute_metrics(items(te_g, preds), labels)["game_accuracy"])
    n_g = len(test_games)
    n_all = int(np.isin(y, game_ix).sum())
    print(f"\n1. Doom vs Animal Crossing accuracy (test split n={n_g}; "
          f"5-fold grouped CV over all {n_all} memes)")
    print(f"{'model':<48} {'test':>7} {'95% CI':>15} {'CV mean':>8}")
    lo, hi = wilson_interval(round(base_acc * n_g), n_g)
    print(f"{'baseline: logistic regression, frozen Lite0':<48} {pct(base_acc):>7} "
          f"{pct(lo)}-{pct(hi)} {pct(np.mean(cv_base)):>8}")
    lo, hi = m_ours["game_accuracy_ci95"]
    print(f"{'ours: calibrated head on frozen Lite0, image only':<48} "
          f"{pct(m_ours['game_accuracy']):>7} {pct(lo)}-{pct(hi)} {pct(np.mean(cv_ours)):>8}")
    if ocr is not None:
        lo, hi = m_text["game_accuracy_ci95"]
        print(f"{'ours + words read by OCR (default)':<48} {pct(m_text['game_accuracy']):>7} "
              f"{pct(lo)}-{pct(hi)} {pct(np.mean(cv_text)):>8}")
    else:
        print("(tesseract is not installed: the default's text reading is not measured)")

    # 2. other: naive 3-class vs calibrated OOD rule
    naive = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000))
    naive.fit(xs(trval), [s.label for s in trval])
    npred = naive.predict(xs(sp.test))
    nl = np.array([s.label for s in sp.test])
    print("\n2. 'other' on the test split")
    print(f"{'model':<48} {'memes kept':>10} {'other caught':>13} {'3-class acc':>12}")
    print(f"{'naive 3-class logistic regression':<48} "
          f"{pct(np.mean(npred[np.isin(nl, GAMES)] != 'other')):>10} "
          f"{pct(np.mean(npred[nl == 'other'] == 'other')):>13} {pct(np.mean(npred == nl)):>12}")
    print(f"{'ours: head + ' + ours.meta.ood.method + ' OOD, calibrated threshold':<48} "
          f"{pct(m_ours['games_kept']):>10} "
          f"{pct(m_ours['other_recall']):>13} {pct(m_ours['accuracy']):>12}")
    with torch.no_grad():
        val_logits = ours.head(torch.from_numpy(xs(sp.val))).numpy()
    aurocs = calibrate(labels, "other", ys(sp.train), xs(sp.train), ys(sp.val), val_logits,
                       xs(sp.val)).val_auroc
    print(f"   ours: ECE {m_ours['ece']:.3f}, temperature {ours.meta.temperature:.2f}; "
          f"validation AUROC by OOD method "
          f"(sources seen in training) { {k: round(v, 3) for k, v in aurocs.items()} }")

    # 3. leave one 'other' source out: every candidate rule side by side
    # (model_training/ood_eval.py)
    loso_table(args, samples, labels, sp, cache, backbone, pre)

    # 4. shortcut checks on the test memes
    print("\n4. The same test memes as real posts come "
          "(sizes, aspect ratios, encodings, brightness)")
    print(f"{'variant':<28} {'doom/AC acc':>11} {'memes kept':>10} {'same label':>10}")
    base_preds = predict(ours, xs(test_games))
    for kind in ("landscape 640x360 PNG", "portrait 480x854 JPEG q92", "1080x1080 WebP",
                 "brightness equalised"):
        arr = np.stack([normalize(resize(variant(load_image(s.path), kind), pre), pre)
                        for s in test_games])
        with torch.no_grad():
            xv = backbone(torch.from_numpy(arr)).numpy()
        pv = predict(ours, xv)
        mv = compute_metrics(items(test_games, pv), labels)
        same = np.mean([a.label == b.label for a, b in zip(pv, base_preds, strict=True)])
        print(f"{kind:<28} {pct(mv['game_accuracy']):>11} {pct(mv['games_kept']):>10}"
              f" {pct(same):>10}")

    # 6. the words posted with the meme (captions: the manifest's Reddit titles for doom/AC)
    if ocr is not None:
        caption_table(args, samples, labels, sp, ours, xs, ys, ocr, pre)

        encoder_table(args, samples, labels, sp, xs, ys, ocr, pre)

    if args.model:
        from inference.classifier import Classifier

        for precision in ("fp32", "int8"):
            try:
                clf = Classifier(args.model, precision=precision)
            except Exception as exc:  # an int8 file may have been dropped by the pipeline
                print(f"\n5. exported model ({precision}): {exc}")
                continue
            preds = clf.predict([s.path for s in sp.test])
            m = compute_metrics(items(sp.test, preds), clf.labels)
            print(f"\n5. exported model {clf.version} ({precision}) on the same test split: "
                  f"doom/AC {pct(m['game_accuracy'])}, kept {pct(m['games_kept'])}, "
                  f"other caught {pct(m['other_recall'])}, 3-class {pct(m['accuracy'])}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
