"""Stage `stats`: every video's per-frame labels -> reports/dataset.json and dataset plots."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline import params
from pipeline.annotations import LabelPolicy
from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError
from pipeline.plots import plot_class_distribution, plot_label_timeline, plot_temporal_distribution
from pipeline.stats import dataset_stats


def run(labels_dir: Path, out_json: Path, plots_dir: Path, params_file: Path = params.DEFAULT_PARAMS) -> dict:
    p = params.load(params_file)
    fps = float(params.section(p, "data.fps"))
    policy = LabelPolicy.from_params(params.section(p, "labels"), fps=fps)
    bins = int(params.section(p, "stats.bins"))
    videos = {}
    for key in params.section(p, "videos"):
        csv = labels_dir / f"{key}.csv"
        if not csv.is_file():
            raise BouldersegError(f"{csv}: no labels for video '{key}'. Run `dvc repro labels` (or `boulderseg labels "
                                  f"{key} {csv}`) first.")
        videos[key] = pd.read_csv(csv, usecols=["label"])["label"].astype(str).tolist()
    stats = dataset_stats(videos, fps=fps, classes=policy.classes, scope=policy.model_classes, bins=bins)
    with atomic_output(out_json) as tmp:
        tmp.write_text(json.dumps(stats, indent=2) + "\n")
    with atomic_output(plots_dir, directory=True) as tmp:
        plot_class_distribution(stats, tmp / "class_distribution.png")
        plot_temporal_distribution(stats, tmp / "temporal_distribution.png")
        for key, labels in videos.items():
            plot_label_timeline(key, labels, policy.classes, fps=fps, out_png=tmp / "timelines" / f"{key}.png")
    return stats
