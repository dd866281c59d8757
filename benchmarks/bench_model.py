"""How good is the classifier, and did it learn or get lucky? One run, one table per question.

On ../shared/data/memes (all of it), with the pipeline's own split, embeddings and calibration:
  1. doom-vs-AC accuracy: the issue's baseline (logistic regression on frozen Lite0 embeddings)
     vs our head, on the held-out test split and in 5-fold cross-validation;
  2. "other": a naive 3-class head vs our calibrated OOD rule (memes kept, other caught);
  3. leave-one-source-out: each 'other' source is held out of training in turn and scored as
     never-seen images (AUROC, share caught, memes kept);
  4. shortcut checks: the same test memes re-encoded at other sizes / aspect ratios / formats /
     brightness, as real posts come; accuracy should not move;
  5. optionally an exported model version (--model), evaluated through the production path.

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
from inference.preprocess import PreprocessConfig, load_image, normalize, resize  # noqa: E402
from inference.metrics import wilson_interval  # noqa: E402
from model_training.backbone import create_backbone  # noqa: E402
from model_training.calibrate import FittedHead, calibrate, fit_calibrated_head  # noqa: E402
from model_training.data import Sample, duplicate_groups, scan_folder, split  # noqa: E402
from model_training.embeddings import EmbeddingCache, cache_key, embed  # noqa: E402
from model_training.evaluate import EvalItem, compute_metrics  # noqa: E402
from model_training.text_model import OcrCache, fit_text_model  # noqa: E402
from inference.text import TextModel, tesseract_available  # noqa: E402

GAMES = ("animal_crossing", "doom")


def fit(labels: list[str], x_tr, y_tr, x_va, y_va, pre: PreprocessConfig, seed: int = 0,
        method: str = "energy+knn") -> FittedHead:
    return fit_calibrated_head(labels, "other", x_tr, y_tr, x_va, y_va, ModelMeta.preprocess_dict(pre), seed, method)


def predict(f: FittedHead, x: np.ndarray, texts: list[str] | None = None, text_model: TextModel | None = None):
    with torch.no_grad():
        logits = f.head(torch.from_numpy(x)).numpy()
    raw = RawOutput(logits, x)
    if texts is not None and text_model is not None:
        raw.extra["text_shift"] = text_model.logit_shift(texts, f.meta.labels, f.meta.temperature)
    return decide(raw, f.meta, f.scorer)  # type: ignore[arg-type]


def words_model(part: list[Sample], ocr: OcrCache) -> TextModel | None:
    return fit_text_model(ocr.read(part, progress=False), [s.label for s in part], *GAMES)


def items(samples: list[Sample], preds) -> list[EvalItem]:
    return [EvalItem(s.path, s.label, p) for s, p in zip(samples, preds)]


def pct(v: float) -> str:
    return f"{100 * v:5.1f}%"


def variant(img: Image.Image, kind: str) -> Image.Image:
    if kind == "landscape 640x360 PNG":
        out = img.resize((640, 360), Image.Resampling.BICUBIC)
        buf = io.BytesIO(); out.save(buf, "PNG")
    elif kind == "portrait 480x854 JPEG q92":
        out = img.resize((480, 854), Image.Resampling.BICUBIC)
        buf = io.BytesIO(); out.save(buf, "JPEG", quality=92)
    elif kind == "1080x1080 WebP":
        out = img.resize((1080, 1080), Image.Resampling.BICUBIC)
        buf = io.BytesIO(); out.save(buf, "WEBP", quality=85)
    elif kind == "brightness equalised":
        luma = np.asarray(img.convert("L"), dtype=np.float32).mean()
        out = ImageEnhance.Brightness(img).enhance(128.0 / max(luma, 1.0))
        buf = io.BytesIO(); out.save(buf, "PNG")
    else:
        raise ValueError(kind)
    return load_image(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "memes")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "cache")
    ap.add_argument("--model", type=Path, default=None, help="also evaluate this exported model version")
    ap.add_argument("--seed", type=int, default=0)
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

    print(f"data: {scan.counts()} (skipped {len(scan.skipped)}); split train {len(sp.train)} / val {len(sp.val)} / test {len(sp.test)}")

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
        m_text = compute_metrics(items(sp.test, predict(ours, xs(sp.test), ocr.read(sp.test, progress=False),
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
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000)).fit(xs(gtr), [s.label for s in gtr])
        cv_base.append(float((clf.predict(xs(te_g)) == np.array([s.label for s in te_g])).mean()))
        inner = split(tr_s, val_fraction=0.15, test_fraction=0.0, seed=args.seed)
        f = fit(labels, xs(inner.train), ys(inner.train), xs(inner.val), ys(inner.val), pre, args.seed)
        cv_ours.append(compute_metrics(items(te_g, predict(f, xs(te_g))), labels)["game_accuracy"])
        if ocr is not None:
            tm = words_model(inner.train, ocr)
            cv_text.append(compute_metrics(items(te_g, predict(f, xs(te_g), ocr.read(te_g, progress=False), tm)),
                                           labels)["game_accuracy"])
    n_g = len(test_games)
    print("\n1. Doom vs Animal Crossing accuracy (test split n=%d; 5-fold grouped CV over all %d memes)" % (n_g, int(np.isin(y, game_ix).sum())))
    print(f"{'model':<48} {'test':>7} {'95% CI':>15} {'CV mean':>8}")
    lo, hi = wilson_interval(round(base_acc * n_g), n_g)
    print(f"{'baseline: logistic regression, frozen Lite0':<48} {pct(base_acc):>7} {pct(lo)}-{pct(hi)} {pct(np.mean(cv_base)):>8}")
    lo, hi = m_ours["game_accuracy_ci95"]
    print(f"{'ours: calibrated head on frozen Lite0, image only':<48} {pct(m_ours['game_accuracy']):>7} {pct(lo)}-{pct(hi)} {pct(np.mean(cv_ours)):>8}")
    if ocr is not None:
        lo, hi = m_text["game_accuracy_ci95"]
        print(f"{'ours + words read by OCR (default)':<48} {pct(m_text['game_accuracy']):>7} {pct(lo)}-{pct(hi)} {pct(np.mean(cv_text)):>8}")
    else:
        print("(tesseract is not installed: the default's text reading is not measured)")

    # 2. other: naive 3-class vs calibrated OOD rule
    naive = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000)).fit(xs(trval), [s.label for s in trval])
    npred = naive.predict(xs(sp.test))
    nl = np.array([s.label for s in sp.test])
    print("\n2. 'other' on the test split")
    print(f"{'model':<48} {'memes kept':>10} {'other caught':>13} {'3-class acc':>12}")
    print(f"{'naive 3-class logistic regression':<48} {pct(np.mean(npred[np.isin(nl, GAMES)] != 'other')):>10} "
          f"{pct(np.mean(npred[nl == 'other'] == 'other')):>13} {pct(np.mean(npred == nl)):>12}")
    print(f"{'ours: head + ' + ours.meta.ood.method + ' OOD, calibrated threshold':<48} {pct(m_ours['games_kept']):>10} "
          f"{pct(m_ours['other_recall']):>13} {pct(m_ours['accuracy']):>12}")
    with torch.no_grad():
        val_logits = ours.head(torch.from_numpy(xs(sp.val))).numpy()
    aurocs = calibrate(labels, "other", ys(sp.train), xs(sp.train), ys(sp.val), val_logits, xs(sp.val)).val_auroc
    print(f"   ours: ECE {m_ours['ece']:.3f}, temperature {ours.meta.temperature:.2f}; validation AUROC by OOD method "
          f"(sources seen in training) { {k: round(v, 3) for k, v in aurocs.items()} }")

    # 3. leave one 'other' source out
    def family(src: str) -> str:
        return "genshin-art" if src.startswith("genshin") else src

    sources = sorted({family(s.source) for s in samples if s.label == "other"})
    print("\n3. Leave-one-source-out: the source is never trained on, then scored as new images")
    methods = ("energy", "knn", "mahalanobis", "energy+knn")
    print("   (OOD AUROC columns: the raw OOD score of each method; 'other AUROC': the final decision's")
    print("    ranking with the default method; caught / kept: the default's decisions)")
    print(f"{'held-out source':<22} {'n':>4} " + " ".join(f"{'OOD ' + m:>15}" for m in methods)
          + f" {'other AUROC':>11} {'caught':>7} {'memes kept':>10} {'doom/AC acc':>11}")
    for src in sources:
        keep = [s for s in samples if not (s.label == "other" and family(s.source) == src)]
        held = [s for s in samples if s.label == "other" and family(s.source) == src]
        ssp = split(keep, seed=args.seed)
        games_test = [s for s in ssp.test if s.label in GAMES]
        aucs = []
        for method in methods:
            f = fit(labels, xs(ssp.train), ys(ssp.train), xs(ssp.val), ys(ssp.val), pre, args.seed, method)
            preds = predict(f, xs(games_test + held))
            m = compute_metrics(items(games_test + held, preds), labels)
            aucs.append(m["ood_auroc"])
        # the last method is the default: its decisions are the ones reported
        print(f"{src:<22} {len(held):>4} " + " ".join(f"{a:>15.3f}" for a in aucs)
              + f" {m['other_auroc']:>11.3f} {pct(m['other_recall']):>7} {pct(m['games_kept']):>10} {pct(m['game_accuracy']):>11}")

    # 4. shortcut checks on the test memes
    print("\n4. The same test memes as real posts come (sizes, aspect ratios, encodings, brightness)")
    print(f"{'variant':<28} {'doom/AC acc':>11} {'memes kept':>10} {'same label':>10}")
    base_preds = predict(ours, xs(test_games))
    for kind in ("landscape 640x360 PNG", "portrait 480x854 JPEG q92", "1080x1080 WebP", "brightness equalised"):
        arr = np.stack([normalize(resize(variant(load_image(s.path), kind), pre), pre) for s in test_games])
        with torch.no_grad():
            xv = backbone(torch.from_numpy(arr)).numpy()
        pv = predict(ours, xv)
        mv = compute_metrics(items(test_games, pv), labels)
        same = np.mean([a.label == b.label for a, b in zip(pv, base_preds)])
        print(f"{kind:<28} {pct(mv['game_accuracy']):>11} {pct(mv['games_kept']):>10} {pct(same):>10}")

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
            print(f"\n5. exported model {clf.version} ({precision}) on the same test split: doom/AC {pct(m['game_accuracy'])}, "
                  f"kept {pct(m['games_kept'])}, other caught {pct(m['other_recall'])}, 3-class {pct(m['accuracy'])}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
