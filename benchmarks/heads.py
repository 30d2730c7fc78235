"""Cross-validating heads at the paper's dataset size, against the floor their FLOPs set on this machine.

    python benchmarks/heads.py [--heads linear,lstm,mstcn] [--videos 22] [--windows 750] [--folds 5] [--params P]

Synthetic features the size of the paper's dataset (22 videos × 6,000 frames, stride 8 → 750
windows each, D = 2048, 5 classes) and climb-grouped 5-fold cross-validation of each head with its
shipped params (epochs, batch, sizes), timed, with its held-out frame accuracy
(so a faster setting is seen to cost nothing, or what it costs). The floor: the head's training FLOPs (forward + backward ≈ 3×
the forward pass's multiply-adds × 2, every epoch of every fold) over the float32 matmul speed this
machine reaches, measured first; no implementation of the same training can beat it.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kit import matmul_flops

from pipeline.core import params
from pipeline.learning.dataset import VideoData, group_folds
from pipeline.learning.train import HeadConfig, cross_validate

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["climbing", "brushing", "reading", "stopwatch", "nothing"]


def forward_flops(name: str, model: dict, n_windows: int, dim: int, n_classes: int) -> float:
    """Multiply-add FLOPs (× 2) of one forward pass over `n_windows` windows."""
    if name == "linear":
        return 2 * n_windows * dim * n_classes
    if name in ("lstm", "bilstm"):
        h = model.get("hidden", 128)
        return (2 if name == "bilstm" else 1) * 2 * n_windows * 4 * h * (dim + h)
    if name == "mstcn":
        ch, layers, stages = model.get("channels", 64), model.get("layers", 10), model.get("stages", 4)
        first = dim * ch + layers * (3 * ch * ch + ch * ch) + ch * n_classes
        rest = n_classes * ch + layers * (3 * ch * ch + ch * ch) + ch * n_classes
        return 2 * n_windows * (first + (stages - 1) * rest)
    raise ValueError(f"no FLOP count for {name}")


def synthetic(n_videos: int, n_windows: int, dim: int) -> list[VideoData]:
    """Videos of `n_windows` windows of 8 frames in runs of 25 windows of one class; each class shifts
    the features' mean by a fixed random direction of norm 1.6 σ (classes 2.3 σ apart), so one window
    alone is often misread and a head that sees its neighbours does better."""
    rng = np.random.default_rng(0)
    means = rng.normal(0, 1.6 / np.sqrt(dim), (len(CLASSES), dim)).astype(np.float32)
    videos = []
    for i in range(n_videos):
        labels = np.repeat(rng.integers(0, len(CLASSES), n_windows // 25 + 1), 25)[:n_windows]
        feats = rng.normal(0, 1, (n_windows, dim)).astype(np.float32) + means[labels]
        ranges = np.stack([np.arange(n_windows) * 8, np.arange(n_windows) * 8 + 8], 1).astype(np.int32)
        frames = np.repeat(labels, 8)
        videos.append(VideoData(f"v{i}", f"c{i // 2}", feats, ranges, frames, np.ones(len(frames), bool),
                                np.asarray(CLASSES)[frames]))
    return videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", default="linear,lstm,mstcn")
    parser.add_argument("--videos", type=int, default=22)
    parser.add_argument("--windows", type=int, default=750)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    a = parser.parse_args()
    p = params.load(a.params)
    flops = matmul_flops()
    videos = synthetic(a.videos, a.windows, 2048)
    folds = group_folds({v.name: v.climb for v in videos}, k=a.folds, seed=0)
    train_windows = a.windows * a.videos * (a.folds - 1) / a.folds
    print(f"{a.videos} videos × {a.windows} windows × 2048, {a.folds}-fold CV, {torch.get_num_threads()} threads; "
          f"float32 matmul {flops / 1e9:.0f} GFLOP/s")
    print(f"{'head':8s} {'epochs':>6s} {'batch':>6s} {'seconds':>8s} {'floor':>8s} {'x floor':>8s} {'accuracy':>8s}")
    total = 0.0
    for name in a.heads.split(","):
        cfg = HeadConfig.from_params(name, p.train.heads[name])
        floor = 3 * forward_flops(name, cfg.model, int(train_windows), 2048, len(CLASSES)) * cfg.epochs * a.folds / flops
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            table = cross_validate(videos, folds, cfg, classes=CLASSES, min_person_fraction=0.5, seed=0,
                                   models_dir=tmp)
            seconds = time.perf_counter() - t
        total += seconds
        accuracy = 100 * (table.label == table.pred).mean()
        print(f"{name:8s} {cfg.epochs:6d} {str(cfg.batch or 'all'):>6s} {seconds:7.1f}s {floor:7.1f}s "
              f"{seconds / floor:7.1f}x {accuracy:7.1f}%", flush=True)
    print(f"{'total':8s} {'':6s} {total:7.1f}s")


if __name__ == "__main__":
    main()
