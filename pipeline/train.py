"""Train heads on cached features with climb-grouped cross-validation; predict every frame."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline import params
from pipeline.atomic import atomic_output
from pipeline.dataset import IGNORE, VideoData
from pipeline.heads import Head, build_head


@dataclass(frozen=True)
class HeadConfig:
    name: str
    epochs: int
    lr: float
    weight_decay: float
    model: dict[str, Any]  # the head's own keyword arguments (hidden, layers, dropout…)

    @classmethod
    def from_params(cls, name: str, head: params.Head) -> HeadConfig:
        return cls(name, head.epochs, head.lr, head.weight_decay, dict(head.model))


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
        seed: int) -> Head:
    """Full-batch Adam on all training videos; padding and personless windows carry no loss."""
    torch.manual_seed(seed)
    targets = [v.window_targets(n_classes=n_classes, min_person_fraction=min_person_fraction) for v in train]
    x, y, lengths = pad(train, targets)
    head = build_head(cfg.name, feature_dim=x.shape[-1], n_classes=n_classes, options=cfg.model)
    head.fit_scaler(x[y != IGNORE])
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    head.train()
    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = loss_fn(head(x, lengths).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
    return head.eval()


@torch.inference_mode()
def predict_frames(head: Head, video: VideoData) -> np.ndarray:
    """(N,) predicted class of every frame: that of the window whose centre is nearest."""
    x = torch.from_numpy(video.features)[None]  # (1, W, D)
    window_pred = head(x, torch.tensor([len(video.features)]))[0].argmax(-1).numpy()  # (W,)
    return window_pred[video.owner]


def cross_validate(
    videos: Sequence[VideoData],
    folds: dict[str, int],
    heads: Sequence[HeadConfig],
    *,
    classes: Sequence[str],
    min_person_fraction: float,
    seed: int,
    models_dir: str | Path,
) -> pd.DataFrame:
    """Train each head on all folds but one and predict the held-out fold's frames.

    Returns one row per (head, frame): head, fold, video, frame, label, pred, scored (the frame
    counts in metrics: it shows a person and its class is not dropped).
    Models are saved as `models_dir/<head>/fold<k>.pt`.
    """
    rows = []
    with atomic_output(models_dir, directory=True) as tmp_models:
        for cfg in heads:
            (tmp_models / cfg.name).mkdir()
            for k in sorted(set(folds.values())):
                train = [v for v in videos if folds[v.name] != k]
                test = [v for v in videos if folds[v.name] == k]
                head = fit(cfg, train, n_classes=len(classes), min_person_fraction=min_person_fraction,
                           seed=seed + k)
                torch.save({"state_dict": head.state_dict(), "head": cfg.name, "options": cfg.model,
                            "classes": list(classes), "fold": k, "test_videos": [v.name for v in test]},
                           tmp_models / cfg.name / f"fold{k}.pt")
                for v in test:
                    pred = predict_frames(head, v)
                    rows.append(pd.DataFrame({
                        "head": cfg.name, "fold": k, "video": v.name,
                        "frame": np.arange(len(pred)),
                        "label": v.label_names,
                        "pred": np.asarray(classes)[pred],
                        "scored": v.scored,
                    }))
    return pd.concat(rows, ignore_index=True)
