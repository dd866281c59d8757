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
    """A head with extra classes whose weights start at their embedding means, scaled like the
    old rows."""
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
    return train_heads(x_train, y_train[None], x_val, y_val[None], num_classes, cfg, init)[0]


def train_heads(
    x_train: np.ndarray,
    y_trains: np.ndarray,
    x_val: np.ndarray,
    y_vals: np.ndarray,
    num_classes: int,
    cfg: HeadConfig = HeadConfig(),
    init: nn.Linear | None = None,
) -> list[tuple[nn.Linear, list[dict[str, float]]]]:
    """`train_head` for K label vectors at once (rows of y_trains / y_vals) on the same embeddings.

    The K heads are independent (AdamW is elementwise, each loss only sees its own head, and a
    head that early-stops keeps its best state however long the others train), so each equals
    what `train_head` returns for its labels; one batched matrix product per step makes the
    report's label-permutation test (hundreds of refits) take seconds, not minutes.
    """
    torch.manual_seed(cfg.seed)
    mu, sd = _standardizer(x_train)
    xt, xv = (torch.from_numpy(x_train) - mu) / sd, (torch.from_numpy(x_val) - mu) / sd
    yt, yv = (
        torch.from_numpy(np.asarray(y_trains)).long(),
        torch.from_numpy(np.asarray(y_vals)).long(),
    )
    k_heads, n_val = yt.shape[0], yv.shape[1]
    start = (
        _to_standard(init, mu, sd) if init is not None else nn.Linear(x_train.shape[1], num_classes)
    )
    weight = start.weight.detach()[None].repeat(k_heads, 1, 1).requires_grad_(True)  # (K, C, D)
    bias = start.bias.detach()[None].repeat(k_heads, 1).requires_grad_(True)  # (K, C)
    anchor_w = start.weight.detach().clone() if init is not None else None
    opt = torch.optim.AdamW([weight, bias], lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    counts = [tuple(np.bincount(y.numpy(), minlength=num_classes)) for y in yt]
    # Shuffled labels keep the class counts, hence the class weights and each head's loss
    # denominator: one cross-entropy over all K heads' rows is then the mean of their losses.
    shared = len(set(counts)) == 1
    loss_fns = [
        nn.CrossEntropyLoss(
            weight=class_weights(y.numpy(), num_classes), label_smoothing=cfg.label_smoothing
        )
        for y in (yt[:1] if shared else yt)
    ]
    n = max(yt.shape[1], 1)
    best = np.full(k_heads, np.inf)
    best_state: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * k_heads
    wait, done = np.zeros(k_heads, int), np.zeros(k_heads, bool)
    histories: list[list[dict[str, float]]] = [[] for _ in range(k_heads)]

    def logits_of(x: torch.Tensor) -> torch.Tensor:  # (K, rows, C)
        return torch.einsum("nd,kcd->knc", x, weight) + bias[:, None, :]

    for epoch in range(cfg.epochs):
        opt.zero_grad()
        out = logits_of(xt)
        if shared:
            fit = loss_fns[0](out.reshape(-1, num_classes), yt.reshape(-1)) * k_heads
            fit_each = fit.detach().expand(k_heads) / k_heads  # per-head values are not separated
        else:
            fit_each = torch.stack([fn(out[k], yt[k]) for k, fn in enumerate(loss_fns)])
            fit = fit_each.sum()
        penalty = torch.zeros(k_heads)
        if cfg.l2:
            penalty = penalty + cfg.l2 * weight.pow(2).sum(dim=(1, 2)) / (2 * n)
        if anchor_w is not None and cfg.anchor:
            old = anchor_w.shape[0]
            penalty = penalty + cfg.anchor * (weight[:, :old] - anchor_w).pow(2).sum(dim=(1, 2))
        (fit + penalty.sum()).backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            train_loss = (fit_each.detach() + penalty.detach()).tolist()
            if n_val:
                val_logits = logits_of(xv)
                val_loss = (
                    nn.functional.cross_entropy(val_logits.permute(0, 2, 1), yv, reduction="none")
                    .mean(dim=1)
                    .tolist()
                )
                val_acc = (val_logits.argmax(2) == yv).float().mean(dim=1).tolist()
            else:
                val_loss, val_acc = train_loss, [float("nan")] * k_heads
        for k in np.flatnonzero(~done).tolist():
            histories[k].append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss[k],
                    "val_loss": val_loss[k],
                    "val_acc": val_acc[k],
                }
            )
            if val_loss[k] < best[k] - 1e-4:
                best[k] = val_loss[k]
                wait[k] = 0
                best_state[k] = (weight[k].detach().clone(), bias[k].detach().clone())
            else:
                wait[k] += 1
                done[k] = wait[k] >= cfg.patience
        if done.all():
            break
    heads = []
    for k in range(k_heads):
        head = nn.Linear(x_train.shape[1], num_classes)
        kept = best_state[k]
        w, b = kept if kept is not None else (weight[k].detach(), bias[k].detach())
        with torch.no_grad():
            head.weight.copy_(w)
            head.bias.copy_(b)
        heads.append((_from_standard(head, mu, sd), histories[k]))
    return heads


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
