"""Stage `evaluate`: predictions -> reports/metrics.json and reports/plots/*.png."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline import params
from pipeline.annotations import LabelPolicy
from pipeline.atomic import atomic_output
from pipeline.metrics import summarize
from pipeline.plots import plot_confusions, plot_timelines


def run(predictions: Path, metrics_json: Path, plots_dir: Path, params_file: Path = params.DEFAULT_PARAMS) -> dict:
    p = params.load(params_file)
    policy = LabelPolicy.from_params(params.section(p, "labels"), fps=float(params.section(p, "data.fps")))
    classes = policy.model_classes
    table = pd.read_parquet(predictions)
    metrics = summarize(table, classes)
    with atomic_output(metrics_json) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    plots_dir.mkdir(parents=True, exist_ok=True)
    plot_confusions(table, classes, plots_dir / "confusion.png")
    plot_timelines(table, policy.classes, plots_dir / "timelines.png")
    return metrics
