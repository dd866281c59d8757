"""Training the linear head on cached embeddings: the fast path, also used to add classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 300
    lr: float = 1e-2
    weight_decay: float = 0.0
    # L2 on the weights over standardised features, as 1/C of logistic regression: 5-fold CV
    # on the memes' Lite0 embeddings put the optimum near C = 0.005-0.01.
    l2: float = 200.0
    label_smoothing: float = 0.05
    patience: int = 30
    seed: int = 0
    # Keeps old classes' weights close to where they were when a class is added (anti-forgetting).
    anchor: float = 0.0


def class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    w = counts.sum() / np.maximum(counts, 1) / num_classes
    return torch.tensor(w, dtype=torch.float32)


def imprint(head: nn.Linear, new_rows: np.ndarray) -> nn.Linear:
    """A head with extra classes whose weights start at their embedding means, scaled like the old rows."""
    old_w = head.weight.detach()
    old_b = head.bias.detach()
    proto = torch.tensor(new_rows, dtype=torch.float32)
    proto = proto / proto.norm(dim=1, keepdim=True).clamp_min(1e-6) * old_w.norm(dim=1).mean()
    out = nn.Linear(old_w.shape[1], old_w.shape[0] + len(new_rows))
    with torch.no_grad():
        out.weight.copy_(torch.cat([old_w, proto]))
        out.bias.copy_(torch.cat([old_b, torch.full((len(new_rows),), float(old_b.mean()))]))
    return out


def _standardizer(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    mu = torch.from_numpy(x.mean(axis=0)).float()
    sd = torch.from_numpy(x.std(axis=0)).float()
    # A floor relative to the typical spread: folding 1/sd of a near-constant feature into the
    # exported weights would make them huge, and fp32/int8 rounding with them.
    sd = sd.clamp_min(0.1 * float(sd.median()) + 1e-6)
    return mu, sd


def _to_standard(head: nn.Linear, mu: torch.Tensor, sd: torch.Tensor) -> nn.Linear:
    out = nn.Linear(head.in_features, head.out_features)
    with torch.no_grad():
        out.weight.copy_(head.weight * sd)
        out.bias.copy_(head.bias + head.weight @ mu)
    return out


def _from_standard(head: nn.Linear, mu: torch.Tensor, sd: torch.Tensor) -> nn.Linear:
    out = nn.Linear(head.in_features, head.out_features)
    with torch.no_grad():
        out.weight.copy_(head.weight / sd)
        out.bias.copy_(head.bias - (head.weight / sd) @ mu)
    return out


def train_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    cfg: HeadConfig = HeadConfig(),
    init: nn.Linear | None = None,
) -> tuple[nn.Linear, list[dict[str, float]]]:
    """Full-batch AdamW with L2 and early stopping on validation loss; returns the best head.

    Trains on standardised features and folds the standardisation back into the returned
    layer, so the exported network still takes raw embeddings.
    """
    torch.manual_seed(cfg.seed)
    mu, sd = _standardizer(x_train)
    xt, yt = (torch.from_numpy(x_train) - mu) / sd, torch.from_numpy(y_train).long()
    xv, yv = (torch.from_numpy(x_val) - mu) / sd, torch.from_numpy(y_val).long()
    head = _to_standard(init, mu, sd) if init is not None else nn.Linear(x_train.shape[1], num_classes)
    anchor_w = head.weight.detach().clone() if init is not None else None
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(y_train, num_classes), label_smoothing=cfg.label_smoothing)
    best, best_state, wait, history = float("inf"), None, 0, []
    for epoch in range(cfg.epochs):
        head.train()
        opt.zero_grad()
        loss = loss_fn(head(xt), yt)
        if cfg.l2:
            loss = loss + cfg.l2 * head.weight.pow(2).sum() / (2 * max(len(yt), 1))
        if anchor_w is not None and cfg.anchor:
            old = anchor_w.shape[0]
            loss = loss + cfg.anchor * (head.weight[:old] - anchor_w).pow(2).sum()
        loss.backward()
        opt.step()
        sched.step()
        head.eval()
        with torch.no_grad():
            logits = head(xv)
            val_loss = float(nn.functional.cross_entropy(logits, yv)) if len(yv) else loss.item()
            val_acc = float((logits.argmax(1) == yv).float().mean()) if len(yv) else float("nan")
        history.append({"epoch": epoch, "train_loss": loss.item(), "val_loss": val_loss, "val_acc": val_acc})
        if val_loss < best - 1e-4:
            best, wait = val_loss, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            wait += 1
            if wait >= cfg.patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    return _from_standard(head, mu, sd), history


def out_of_fold_logits(
    x: np.ndarray,
    fit: Callable[[np.ndarray], nn.Linear],
    seed: int = 0,
    folds: int = 5,
) -> np.ndarray:
    """Logits for every row of x from a head `fit(rows)` trained without that row (k folds)."""
    order = np.random.default_rng(seed).permutation(len(x))
    out: np.ndarray | None = None
    for k in range(folds):
        held = order[k::folds]
        head = fit(np.setdiff1d(order, held))
        with torch.no_grad():
            logits = head(torch.from_numpy(x[held])).numpy()
        if out is None:
            out = np.zeros((len(x), logits.shape[1]), np.float32)
        out[held] = logits
    assert out is not None
    return out
