r"""Which rule should the correction memory use (issue 24)? Candidates side by side, chosen
leave-one-kind-out so the table does not reward a rule fitted to the kind it reports.

Kinds: the "other" sources of bench_retrain.py (e) (each on a model trained without it, as
there) and the new label "genshin" on the served model (bench_retrain.py (f)). For each kind
and seed, the kind's images are shuffled, 40% are scored and k of the rest are "corrected";
caught = the scored images that end up with the kind's label (the model's own answer, or the
memory's); kept = the doom/AC test memes that still get a game label (the model alone calls a
few "other"; the memory may pull more away).

Rules, all on the stored 128-d image vectors (inference/fingerprint.py) and the model's bank of
known doom/AC memes (its knn OOD bank):
- margin (the served rule, inference/correction_memory.py): the nearest corrected image is at
  least `min` close and closer by `m` than the r-th nearest known meme;
- vote: among the k nearest of (corrected images and known memes), at least n are corrected;
- either one, plus a text space: the MiniLM embedding (inference/sentence.py) of the words the
  bot reads (OCR + caption; the bot reads words only of memes it calls a game, so other images
  have none): closer by `mt` to a corrected image's words than to the rt-th nearest known
  meme's words, cosine >= `mint`, both with >= 3 words.

For each held-out kind the rule is the one with the most caught (k=20, mean over seeds) on the
OTHER kinds among those that keep at least --min-kept (the issue's goal, 95%) of the doom/AC
memes on every other kind (every family holds the served rule).

    .venv/bin/python benchmarks/bench_memory_rules.py [--holdout SRC=MODELS_DIR,...] \
        [--models models] [--encoder models/encoders/all-minilm-l6-v2] [--seeds 5]

A source without a models folder given is trained here (`memebot train --holdout-source`,
~5-8 min each with the embedding cache).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.classifier import Classifier, Prediction  # noqa: E402
from inference.correction_memory import MEMORY_MARGIN, MEMORY_MIN_COSINE, MEMORY_RANK  # noqa: E402
from inference.fingerprint import pack, project, unpack  # noqa: E402
from inference.metadata import resolve_model_dir  # noqa: E402
from inference.sentence import ENCODER_NAME, SentenceEncoder, encoder_dir  # noqa: E402
from inference.text import read_text, words  # noqa: E402
from model_training.data import Sample, scan_folder, split  # noqa: E402
from model_training.text_model import OcrCache  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MEMES = SHARED / "memes"
GENSHIN = SHARED / "genshin"
GAMES = ("doom", "animal_crossing")
MIN_WORDS = 3
TOP = 40  # known-meme neighbours kept per image (ranks and votes never look further)
STEPS = (5, 20, 50)

TextRule = tuple[float, int, float] | None  # (mt, rt, mint) of the words, or no words


@dataclass(frozen=True)
class Rule:
    """margin: (m, r, least); vote: n of the k nearest (k, n); text: the words' rule."""

    kind: str
    a: float  # margin m | vote k
    b: int  # margin rank r | vote n
    least: float = 0.0
    text: TextRule = None


@dataclass
class Kind:
    """One kind's vectors: its images (held), the doom/AC test memes (games), the known bank."""

    name: str
    held_img: np.ndarray
    held_caught: np.ndarray  # the model alone gives the kind's label
    held_txt: np.ndarray
    held_ok: np.ndarray  # words enough to compare
    games_img: np.ndarray
    games_kept: np.ndarray  # the model alone gives a game label
    games_txt: np.ndarray
    games_ok: np.ndarray
    bank_top: dict[str, np.ndarray]  # part -> top-TOP cosines to the known memes, descending
    text_top: dict[str, np.ndarray]


def _top(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    return -np.sort(-(x @ bank.T), axis=1)[:, :TOP]


def stored(preds: list[Prediction]) -> np.ndarray:
    """Vectors as the bot stores them (projected, float16)."""
    return unpack([pack(p.embedding) for p in preds if p.embedding is not None])


class Words:
    """The words the bot would read of an image: OCR (cached) + caption, only for images the
    model calls a game (the bot does not read the others)."""

    def __init__(self, cache: Path, encoder: SentenceEncoder) -> None:
        self.ocr = OcrCache(cache)
        self.encoder = encoder
        with (MEMES / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
            self.captions = {r["sha256"]: r.get("caption", "") for r in csv.DictReader(fh)}

    def texts(self, samples: list[Sample], preds: list[Prediction]) -> list[str]:
        out = []
        for s, p in zip(samples, preds, strict=True):
            if p.label not in GAMES:
                out.append("")
                continue
            seen = self.ocr.get(s.sha256)
            ocr = seen if seen is not None else read_text_of(s.path)
            out.append(" ".join(t for t in (ocr, self.captions.get(s.sha256, "")) if t))
        return out

    def embed(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        ok = np.array([len(words(t)) >= MIN_WORDS for t in texts])
        return self.encoder.embed(texts), ok


def read_text_of(path: Path) -> str:
    from inference.preprocess import load_image

    return read_text(load_image(path))


def kind_vectors(name: str, clf: Classifier, held: list[Sample], games: list[Sample],
                 known: list[Sample], is_caught: Callable[[Prediction], bool],
                 text: Words) -> Kind:
    def predict(samples: list[Sample]) -> list[Prediction]:
        preds = clf.predict([s.path for s in samples])
        bad = [s.path for s, p in zip(samples, preds, strict=True)
               if not isinstance(p, Prediction)]
        if bad:
            raise SystemExit(f"not classified: {bad[:3]}")
        return [p for p in preds if isinstance(p, Prediction)]

    ph, pg, pk = predict(held), predict(games), predict(known)
    scorer = getattr(clf, "ood", None)
    if scorer is None or scorer.bank is None:
        raise SystemExit(f"model {clf.version} has no bank of known memes (knn OOD score)")
    bank = project(scorer.bank)
    ht, hok = text.embed(text.texts(held, ph))
    gt, gok = text.embed(text.texts(games, pg))
    kt, kok = text.embed(text.texts(known, pk))
    tbank = kt[kok]
    hi, gi = stored(ph), stored(pg)
    return Kind(name, hi, np.array([is_caught(p) for p in ph]), ht, hok,
                gi, np.array([p.label in GAMES for p in pg]), gt, gok,
                {"held": _top(hi, bank), "games": _top(gi, bank)},
                {"held": _top(ht, tbank), "games": _top(gt, tbank)})


def fires(kind: Kind, part: str, teach: np.ndarray, rule: Rule) -> np.ndarray:
    """Which images of `part` the memory of the `teach` images relabels."""
    x = getattr(kind, f"{part}_img")
    sims = x @ kind.held_img[teach].T
    best = sims.max(1)
    top = kind.bank_top[part]
    if rule.kind == "margin":
        hit = (best >= rule.least) & (best >= top[:, rule.b - 1] + rule.a)
    else:
        k, need = int(rule.a), rule.b
        pooled = np.concatenate([-np.sort(-sims, axis=1)[:, :k], top[:, :k]], axis=1)
        kth = -np.sort(-pooled, axis=1)[:, k - 1]
        hit = (sims >= kth[:, None]).sum(1) >= need
    txt = rule.text
    ok_teach = kind.held_ok[teach]
    if txt is not None and ok_teach.any():
        mt, rt, least_t = txt
        t = getattr(kind, f"{part}_txt")
        best_t = (t @ kind.held_txt[teach][ok_teach].T).max(1)
        hit = hit | (getattr(kind, f"{part}_ok") & (best_t >= least_t)
                     & (best_t >= kind.text_top[part][:, rt - 1] + mt))
    return np.asarray(hit, bool)


def score(kind: Kind, rule: Rule, k: int, seeds: int) -> tuple[float, float]:
    """(caught, kept), means over seeds."""
    n = len(kind.held_img)
    cut = max(10, n * 2 // 5)
    caught, kept = [], []
    for seed in range(seeds):
        pool = np.array(random.Random(seed).sample(range(n), n))
        scored, teach = pool[:cut], pool[cut:][:k]
        hit_held = fires(kind, "held", teach, rule)[scored]
        hit_games = fires(kind, "games", teach, rule)
        caught.append(np.mean(kind.held_caught[scored] | hit_held))
        kept.append(np.mean(kind.games_kept & ~hit_games))
    return float(np.mean(caught)), float(np.mean(kept))


WORDS: list[TextRule] = [(mt, rt, least) for mt in (0.0, 0.05, 0.1) for rt in (1, 3)
                         for least in (0.3, 0.5)]


def candidates(text: bool) -> list[Rule]:
    image = [Rule("margin", m, r, MEMORY_MIN_COSINE)
             for m in (0.0, 0.02, 0.04, 0.06) for r in (1, 3, 5, 10)]
    image += [Rule("vote", k, n) for k in (3, 5, 8, 10, 15) for n in (1, 2, 3) if n < k]
    if not text:
        return image
    return [dataclasses.replace(r, text=t) for r in image for t in [None, *WORDS]]


def describe(rule: Rule) -> str:
    head = (f"margin {rule.a}, rank {rule.b}" if rule.kind == "margin"
            else f"vote {rule.b} of {int(rule.a)}")
    return head + ("" if rule.text is None else " + words (m {}, rank {}, min {})".format(
        *rule.text))


def holdout_model(source: str, given: dict[str, Path], cache: Path, threads: int,
                  work: Path) -> Path:
    if source in given:
        return resolve_model_dir(given[source])
    folder = work / f"holdout-{source}"
    print(f"training a model without {source} into {folder}", flush=True)
    subprocess.run([sys.executable, "-m", "bot.cli", "train", str(MEMES), "--model-dir",
                    str(folder), "--cache-dir", str(cache), "--holdout-source", source,
                    "--threads", str(threads), "--no-int8", "--no-report", "--no-encoder"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return resolve_model_dir(folder)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "cache")
    ap.add_argument("--encoder", type=Path, default=None,
                    help=f"default: <models>/encoders/{ENCODER_NAME}")
    ap.add_argument("--unseen", default="programming-memes,game-snaps,pokemon-art")
    ap.add_argument("--holdout", default="", help="SRC=MODELS_DIR,... already trained")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--min-kept", type=float, default=0.95,
                    help="doom/AC test memes a rule must keep on every kind it is chosen on")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    enc = args.encoder or encoder_dir(args.models)
    if not enc.is_dir():
        raise SystemExit(f"no sentence encoder in {enc}: give --encoder (memebot train exports it)")
    text = Words(args.cache, SentenceEncoder(enc, threads=args.threads))
    given = {k: Path(v) for k, v in (p.split("=", 1) for p in args.holdout.split(",") if p)}
    samples = scan_folder(MEMES, progress=False).samples
    kinds: list[Kind] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-rules-", dir=ROOT / "var") as work:
        for source in args.unseen.split(","):
            folder = holdout_model(source, given, args.cache, args.threads, Path(work))
            parts = split(samples, seed=0, holdout_source=source)
            clf = Classifier(folder, precision="fp32", read_text=False)
            kinds.append(kind_vectors(
                source, clf, sorted(parts.holdout, key=lambda s: s.sha256),
                [s for s in parts.test if s.label in GAMES],
                [s for s in parts.train if s.label in GAMES],
                lambda p: p.label == "other", text))
            print(f"  vectors of {source}: done", flush=True)
    served = resolve_model_dir(args.models)
    chosen = json.loads((served / "splits.json").read_text())
    by_sha = {s.sha256: s for s in samples}
    files = sorted(p for p in GENSHIN.iterdir() if p.suffix.lower() in (".png", ".webp", ".jpg"))
    genshin = [Sample(p, "genshin", hashlib.sha256(p.read_bytes()).hexdigest(), 0, "genshin")
               for p in files]
    kinds.append(kind_vectors(
        "genshin (new label)", Classifier(served, precision="fp32", read_text=False), genshin,
        [by_sha[h] for h in chosen["test"] if h in by_sha and by_sha[h].label in GAMES],
        [by_sha[h] for h in chosen["train"] if h in by_sha and by_sha[h].label in GAMES],
        lambda p: False, text))
    current = Rule("margin", MEMORY_MARGIN, MEMORY_RANK, MEMORY_MIN_COSINE)
    families = {"image: margin or vote": candidates(False),
                "served rule + words": [dataclasses.replace(current, text=t)
                                       for t in [None, *WORDS]],
                "image + words": candidates(True)}
    at20 = {(name, r, kd.name): score(kd, r, 20, args.seeds)
            for name, rules in families.items() for r in rules for kd in kinds}
    print(f"\ncaught / doom-AC test memes kept, mean of {args.seeds} seeds; a rule is chosen "
          f"on the other kinds (kept >= {args.min_kept:.0%} on each)")
    head = ["held-out kind", "corrections", "served rule", *families]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for kd in kinds:
        others = [o for o in kinds if o is not kd]
        picks = {}
        for name, rules in families.items():
            ok = [r for r in rules if all(at20[name, r, o.name][1] >= args.min_kept
                                          for o in others)]
            if not ok:
                raise SystemExit(f"no rule of {name!r} keeps {args.min_kept:.0%} of the doom/AC "
                                 f"memes on every kind but {kd.name}: lower --min-kept")
            picks[name] = max(ok, key=lambda r, n=name: np.mean(  # type: ignore[misc]
                [at20[n, r, o.name][0] for o in others]))
        for k in STEPS:
            cells = [score(kd, current, k, args.seeds),
                     *(score(kd, r, k, args.seeds) for r in picks.values())]
            print(f"| {kd.name} | {k} | " + " | ".join(
                f"{100 * c:.1f}% / {100 * p:.1f}%" for c, p in cells) + " |")
        print("|  | chosen on the others | " + describe(current) + " | "
              + " | ".join(describe(r) for r in picks.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
