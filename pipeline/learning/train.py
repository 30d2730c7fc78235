"""Train heads on cached features with climb-grouped cross-validation; predict every frame."""
from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from pipeline.core import params
from pipeline.core.errors import BouldersegError
from pipeline.learning.dataset import IGNORE, VideoData
from pipeline.learning.heads import HEADS, Head, build_head, solved


@dataclass(frozen=True)
class Loss:
    class_weights: str = "none"  # none | inverse_frequency (of the training windows' targets)
    label_smoothing: float = 0.0
    focal_gamma: float = 0.0  # > 0: each window's cross-entropy scaled by (1 - p_true) ** gamma

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """(N, C) logits, (N,) targets with IGNORE where no loss; a weighted mean as torch's cross-entropy takes it."""
        if not self.focal_gamma:
            return F.cross_entropy(logits, y, weight=weight, ignore_index=IGNORE, label_smoothing=self.label_smoothing)
        keep = y != IGNORE
        logits, y = logits[keep], y[keep]
        ce = F.cross_entropy(logits, y, weight=weight, reduction="none", label_smoothing=self.label_smoothing)
        p_true = F.softmax(logits, -1).gather(1, y[:, None])[:, 0]
        w = weight[y] if weight is not None else torch.ones_like(ce)
        return ((1 - p_true) ** self.focal_gamma * ce).sum() / w.sum()

    def class_weight(self, y: torch.Tensor, n_classes: int) -> torch.Tensor | None:
        if self.class_weights == "none":
            return None
        counts = torch.bincount(y[y != IGNORE], minlength=n_classes).float()
        return torch.where(counts > 0, counts.sum() / (n_classes * counts.clamp_min(1)), 0.0)


def smoothing_loss(logits: torch.Tensor, lengths: torch.Tensor, tau: float = 4.0) -> torch.Tensor:
    """MS-TCN's truncated MSE between the log-probabilities of neighbouring windows, padding excluded."""
    logp = F.log_softmax(logits, -1)  # (B, T, C)
    d = (logp[:, 1:] - logp[:, :-1].detach()).pow(2).clamp(max=tau**2).mean(-1)  # (B, T - 1)
    valid = torch.arange(1, logits.shape[1])[None] < lengths[:, None]
    return d[valid].mean()


@dataclass(frozen=True)
class HeadConfig:
    name: str
    epochs: int | None  # None only for a head that is solved, not trained (logreg)
    lr: float | None
    weight_decay: float
    model: dict[str, Any]  # the head's own keyword arguments (hidden, layers, dropout…)
    batch: int | None = None  # windows (window heads) or videos (sequence heads) per step; None: all
    select_epochs: tuple[int, ...] = ()  # train.select nested: the epochs each outer fold chooses among

    @classmethod
    def from_params(cls, name: str, head: params.Head) -> HeadConfig:
        if not solved(name) and (head.epochs is None or head.lr is None):
            raise BouldersegError(f"train.heads.{name} in params.yaml: set epochs and lr (Adam trains this head).")
        return cls(name, head.epochs, head.lr, head.weight_decay, dict(head.model), head.batch,
                   tuple(head.select_epochs or ()))


def save_state(obj: Any, path: Path) -> None:
    """torch.save through Python's file API, so a full disk is an OSError (torch's own writer raises RuntimeError)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path.write_bytes(buffer.getvalue())


def pad(videos: Sequence[VideoData], targets: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Videos as one padded batch: x (B, T, D), y (B, T) with padding IGNORE, lengths (B,)."""
    lengths = torch.tensor([len(v.features) for v in videos])
    x = torch.zeros(len(videos), int(lengths.max()), videos[0].features.shape[1])
    y = torch.full(x.shape[:2], IGNORE, dtype=torch.long)
    for i, (v, t) in enumerate(zip(videos, targets)):
        x[i, : len(t)] = torch.from_numpy(v.features)
        y[i, : len(t)] = torch.from_numpy(t)
    return x, y, lengths


def fit(cfg: HeadConfig, train: Sequence[VideoData], *, n_classes: int, min_person_fraction: float,
        seed: int, loss: Loss = Loss(), on_epoch: Callable[[int, Head], None] | None = None,
        inner_folds: int = 3, say: Callable[[str], None] | None = None) -> Head:
    """Adam for `cfg.epochs` epochs on shuffled mini-batches of `cfg.batch` windows or videos (what to
    train for is fixed beforehand, or chosen by `choose_epochs` on the training videos alone);
    padding and personless windows carry no loss and enter no normalisation statistic. A head with a
    `solve` method (logreg) is solved instead, choosing on at most `inner_folds` climb-grouped splits; its choice
    is kept in `head.chosen`, and `say` hears each C it tried. `on_epoch(e, head)`
    sees the head, in eval mode, after each epoch e = 1, 2, …"""
    torch.manual_seed(seed)
    targets = [v.window_targets(n_classes=n_classes, min_person_fraction=min_person_fraction) for v in train]
    x, y, lengths = pad(train, targets)
    head = build_head(cfg.name, feature_dim=x.shape[-1], n_classes=n_classes, options=cfg.model)
    head.fit_scaler(x[y != IGNORE])
    if hasattr(head.body, "solve"):
        keep = y != IGNORE
        climbs = np.array([[v.climb] * x.shape[1] for v in train])  # (B, T) each window's climb
        head.chosen = head.body.solve(head.inputs(x, lengths)[0][keep].numpy(), y[keep].numpy(),
                                      climbs[keep.numpy()], seed=seed, splits=inner_folds, say=say)
        return head.eval()
    weight = head.class_weight = loss.class_weight(y, n_classes)
    smoothing = getattr(head.body, "smoothing", 0.0)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, mask = head.inputs(x, lengths)  # standardised once: the statistics are fixed from here on
    if HEADS[cfg.name].kind == "window":  # each window on its own: the windows that carry loss, as (N, 1, D)
        keep = y != IGNORE
        x, mask, y = x[keep][:, None], mask[keep][:, None], y[keep][:, None]
    batch = min(cfg.batch or len(x), len(x))
    head.train()
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(len(x)) if batch < len(x) else torch.arange(len(x))
        for idx in order.split(batch):
            n = mask[idx].sum(1)  # (b,) lengths; the batch is cut to its longest video
            xb, mb, yb = (t[idx, : int(n.max())] for t in (x, mask, y))
            opt.zero_grad()
            total = torch.zeros(())
            for logits in head.outputs((xb, mb)):  # (b, T, C) each
                total = total + loss(logits.flatten(0, 1), yb.flatten(), weight)
                if smoothing:
                    total = total + smoothing * smoothing_loss(logits, n)
            total.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch, head.eval())
            head.train()
    return head.eval()


def mode_filter(pred: np.ndarray, window: int) -> np.ndarray:
    """(N,) class indices -> the most frequent class in the `window` frames around each frame: window // 2 before
    it, (window - 1) // 2 after (an even width has one more before, as scipy.ndimage's filters), cut at the video's
    ends (ties: the frame's own class if tied, else the lowest); window 0 or 1 returns `pred`."""
    if window <= 1:
        return pred
    onehot = np.eye(int(pred.max()) + 1, dtype=np.int64)[pred]  # (N, C)
    c = np.vstack([np.zeros((1, onehot.shape[1]), np.int64), onehot.cumsum(0)])  # (N + 1, C)
    idx = np.arange(len(pred))
    counts = c[np.minimum(idx + (window - 1) // 2 + 1, len(pred))] - c[np.maximum(idx - window // 2, 0)]  # (N, C)
    best = counts.max(1)
    return np.where(counts[idx, pred] == best, pred, counts.argmax(1))


@torch.inference_mode()
def window_classes(head: Head, features: np.ndarray) -> np.ndarray:
    """(W,) predicted class index of each window of one video's (W, D) features."""
    x = torch.from_numpy(np.asarray(features, np.float32))[None]  # (1, W, D)
    return head(x, torch.tensor([len(features)]))[0].argmax(-1).numpy()


def predict_frames(head: Head, video: VideoData) -> np.ndarray:
    """(N,) predicted class of every frame: that of the window whose centre is nearest."""
    return window_classes(head, video.features)[video.owner]


def trainable(videos: Sequence[VideoData], *, n_classes: int, min_person_fraction: float) -> bool:
    """Whether any window of `videos` carries a loss (shows enough of a person, in a class not dropped)."""
    return any((v.window_targets(n_classes=n_classes, min_person_fraction=min_person_fraction) != IGNORE).any()
               for v in videos)


def choose_epochs(cfg: HeadConfig, videos: Sequence[VideoData], *, inner_folds: int, n_classes: int,
                  min_person_fraction: float, seed: int, loss: Loss = Loss()) -> dict[str, Any]:
    """Which of `cfg.select_epochs` to train for, chosen on `videos` alone: climb-grouped inner folds (at most
    `inner_folds`), one run of the longest choice per fold scored at every choice on the held-out climbs (frame
    accuracy over their scored frames). {"epochs": the best mean (ties: fewer), "inner_accuracy": {epochs: %}};
    with one climb, or no inner split left anything to learn from: `cfg.epochs`, inner_accuracy empty."""
    choices = sorted(set(cfg.select_epochs))
    if not choices:
        raise BouldersegError(f"train.select is nested, but train.heads.{cfg.name} in params.yaml lists no "
                              "select_epochs to choose among: add them (e.g. [15, 30, 60]).")
    climbs = sorted({v.climb for v in videos})
    if len(climbs) < 2:
        return {"epochs": cfg.epochs, "inner_accuracy": {}}
    from pipeline.learning.dataset import group_folds

    inner = group_folds({v.name: v.climb for v in videos}, k=min(inner_folds, len(climbs)), seed=seed)
    hits = {e: [0, 0] for e in choices}  # epochs -> [right, scored] summed over the inner folds

    for k in sorted(set(inner.values())):
        held = [v for v in videos if inner[v.name] == k]

        def score(epoch: int, head: Head) -> None:
            if epoch in hits:
                for v in held:
                    hits[epoch][0] += int((predict_frames(head, v) == v.frame_labels)[v.scored].sum())
                    hits[epoch][1] += int(v.scored.sum())

        train = [v for v in videos if inner[v.name] != k]
        if not trainable(train, n_classes=n_classes, min_person_fraction=min_person_fraction):
            continue  # the person filter left this split nothing to learn from: it scores no choice
        fit(replace(cfg, epochs=choices[-1]), train, n_classes=n_classes, min_person_fraction=min_person_fraction,
            seed=seed + k, loss=loss, on_epoch=score)
    if not any(n for _, n in hits.values()):  # no inner split had anything to learn from: nothing to choose on
        return {"epochs": cfg.epochs, "inner_accuracy": {}}
    accuracy = {e: 100 * right / max(n, 1) for e, (right, n) in hits.items()}
    return {"epochs": max(choices, key=lambda e: (round(accuracy[e], 6), -e)),
            "inner_accuracy": {str(e): round(a, 2) for e, a in accuracy.items()}}


def fit_chosen(cfg: HeadConfig, train: Sequence[VideoData], *, select: str, inner_folds: int, n_classes: int,
               min_person_fraction: float, seed: int, loss: Loss = Loss(),
               say: Callable[[str], None] | None = None) -> Head:
    """`fit`, after choosing the epochs on `train` alone when `select` is nested (a solved head chooses its own);
    the choice is in `head.chosen`. `say` hears what was chosen, a line each (a solved head's: each C it tried)."""
    chosen = {}
    if select == "nested" and not solved(cfg.name):
        chosen = choose_epochs(cfg, train, inner_folds=inner_folds, n_classes=n_classes,
                               min_person_fraction=min_person_fraction, seed=seed, loss=loss)
        cfg = replace(cfg, epochs=chosen["epochs"])
        if say is not None:
            say(f"chose {chosen['epochs']} epochs (inner accuracy {chosen['inner_accuracy'] or 'none: one climb'})")
    head = fit(cfg, train, n_classes=n_classes, min_person_fraction=min_person_fraction, seed=seed, loss=loss,
               inner_folds=inner_folds, say=say)
    head.chosen = getattr(head, "chosen", {}) | chosen
    return head


def cross_validate(
    videos: Sequence[VideoData],
    folds: dict[str, int],
    cfg: HeadConfig,
    *,
    classes: Sequence[str],
    min_person_fraction: float,
    seed: int,
    models_dir: str | Path,
    loss: Loss = Loss(),
    mode_window: int = 0,
    select: str = "none",
    inner_folds: int = 3,
    say: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Train the head on all folds but one and predict the held-out fold's frames, for every fold.

    Returns one row per frame: head, fold, video, frame, label, pred, scored (the frame counts in
    metrics: it shows a person and its class is not dropped), person (it passes the person filter: the
    prediction's segments are cut only where it does not), chosen (JSON: what the fold chose from its own
    training videos: logreg's C, nested selection's epochs; {} when nothing), and with `mode_window` > 1
    pred_mode: pred after a mode filter over that many frames. Fold models go to `models_dir/fold<k>.pt`, with the
    loss's class weights they were trained with. `say` hears a line as each fold starts and ends (and what it
    chose, as `fit_chosen` says it).
    """
    rows, ks = [], sorted(set(folds.values()))
    for i, k in enumerate(ks, 1):
        train = [v for v in videos if folds[v.name] != k]
        test = [v for v in videos if folds[v.name] == k]
        if not trainable(train, n_classes=len(classes), min_person_fraction=min_person_fraction):
            raise BouldersegError(
                f"fold {k}: no window of its training videos ({', '.join(v.name for v in train)}) has the share of "
                f"person frames train.min_person_fraction asks ({min_person_fraction}), so there is nothing to train "
                "on. The person filter dropped their frames: look at data/persons/<video>.parquet (its `reason` "
                "column), and lower persons.conf or pick another persons.detector.")
        start, tell = time.monotonic(), (lambda line: say(f"fold {k} ({i}/{len(ks)}): {line}")) if say else None
        if tell:
            tell(f"training on {len(train)} videos, testing on {len(test)}")
        head = fit_chosen(cfg, train, select=select, inner_folds=inner_folds, n_classes=len(classes),
                          min_person_fraction=min_person_fraction, seed=seed + k, loss=loss, say=tell)
        if tell:
            tell(f"trained in {time.monotonic() - start:.1f} s")
        save_state({"state_dict": head.state_dict(), "head": cfg.name, "options": cfg.model, "classes": list(classes),
                    "fold": k, "test_videos": [v.name for v in test], "chosen": head.chosen,
                    "class_weight": head.class_weight},
                   Path(models_dir) / f"fold{k}.pt")
        for v in test:
            pred = predict_frames(head, v)
            filtered = {"pred_mode": np.asarray(classes)[mode_filter(pred, mode_window)]} if mode_window > 1 else {}
            rows.append(pd.DataFrame({"head": cfg.name, "fold": k, "video": v.name, "frame": np.arange(len(pred)),
                                      "label": v.label_names, "pred": np.asarray(classes)[pred],
                                      "scored": v.scored, "person": v.frame_person,
                                      "chosen": json.dumps(head.chosen, sort_keys=True)} | filtered))
    return pd.concat(rows, ignore_index=True)
