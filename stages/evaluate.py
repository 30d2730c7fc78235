"""Stage `evaluate`: predictions -> reports/metrics.json and reports/plots/*.png."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import params
from pipeline.cliutil import ParamsOpt, run_stage


def main(
    predictions: Annotated[Path, typer.Argument(help="Predictions written by `boulderseg train`.")] = Path("reports/predictions.parquet"),
    metrics_json: Annotated[Path, typer.Option("--metrics", help="Output metrics JSON.")] = Path("reports/metrics.json"),
    plots_dir: Annotated[Path, typer.Option("--plots", help="Output directory for PNG plots.")] = Path("reports/plots"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Frame and per-class accuracy per fold, mean ± std over folds and pooled; confusion and timeline plots."""
    import json

    import pandas as pd

    from pipeline.annotations import LabelPolicy
    from pipeline.atomic import atomic_output
    from pipeline.metrics import summarize
    from pipeline.plots import plot_confusions, plot_timelines

    p = params.load(params_file)
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    table = pd.read_parquet(predictions)
    metrics = summarize(table, policy.model_classes)
    with atomic_output(metrics_json) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    with atomic_output(plots_dir, directory=True) as tmp:
        plot_confusions(table, policy.model_classes, metrics, tmp / "confusion.png")
        plot_timelines(table, policy.classes, tmp / "timelines.png")
    for backbone, heads in metrics.items():
        for head, m in heads.items():
            typer.echo(f"{backbone} + {head}: frame accuracy {m['accuracy']['mean']:.3f} ± {m['accuracy']['std']:.3f} "
                       f"(mean over folds), {m['pooled_accuracy']:.3f} pooled over all scored frames")


if __name__ == "__main__":
    run_stage(main)
