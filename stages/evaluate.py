"""Stage `evaluate`: predictions -> reports/metrics.json and reports/plots/*.png."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage


def main(
    predictions: Annotated[Path, typer.Argument(help="Predictions of the train stages: <dir>/<backbone>/<head>.parquet.")] = Path("reports/predictions"),
    metrics_json: Annotated[Path, typer.Option("--metrics", help="Output metrics JSON.")] = Path("reports/metrics.json"),
    plots_dir: Annotated[Path, typer.Option("--plots", help="Output directory for PNG plots.")] = Path("reports/plots"),
    board: Annotated[Path, typer.Option("--leaderboard", help="Output: BOARD.md and BOARD.csv.")] = Path("reports/leaderboard"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Frame, per-class, macro-F1, Edit and F1@10/25/50 per fold and mean ± std; leaderboard; confusion and timeline plots."""
    import json

    import pandas as pd

    from pipeline.annotations.segments import LabelPolicy
    from pipeline.core.atomic import atomic_output
    from pipeline.core.errors import BouldersegError
    from pipeline.learning import leaderboard
    from pipeline.learning.metrics import not_scored_note, shown, summarize
    from pipeline.views.plots import plot_confusions, plot_timelines

    p = params.load(params_file)
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    rows = [predictions / backbone / f"{head}.parquet"
            for backbone in [b for _, b in p.features.backbones.items()] + ["+".join(f) for f in p.train.fusions]
            for head in p.train.heads]  # only what params lists: a removed head's old file is not scored
    missing = [str(r) for r in rows if not r.exists()]
    if missing:
        raise BouldersegError(f"no predictions at {', '.join(missing)}: run `dvc repro` to train them.")
    table = pd.concat([pd.read_parquet(r) for r in rows], ignore_index=True)
    metrics = summarize(table, policy.model_classes)
    if "pred_mode" in table:  # the same predictions after the mode filter, scored beside them
        filtered = summarize(table.assign(pred=table["pred_mode"], head=table["head"] + "+mode"), policy.model_classes)
        metrics = {b: metrics[b] | filtered[b] for b in metrics}
    with atomic_output(metrics_json) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    title = leaderboard.protocol(policy.drop, float((~table["person"]).mean()))  # every row: the same persons
    leaderboard.write(metrics, title=title, md_path=board.with_suffix(".md"), csv_path=board.with_suffix(".csv"))
    with atomic_output(plots_dir, directory=True) as tmp:
        plot_confusions(table, policy.model_classes, metrics, tmp / "confusion")
        plot_timelines(table, policy.classes, tmp / "timelines.png")
    for backbone, heads in metrics.items():
        for head, m in heads.items():
            accuracy = shown(m["accuracy"]["mean"], m["accuracy"]["std"], " %")
            typer.echo(f"{backbone} + {head}: frame accuracy {accuracy} (mean over folds; "
                       f"{shown(m['pooled_accuracy'], unit=' %')} pooled), Edit {shown(m['edit']['mean'])}, "
                       f"F1@10/25/50 {'/'.join(shown(m[k]['mean']) for k in ('f1@10', 'f1@25', 'f1@50'))}")
            if not_scored_note(m):
                typer.echo(f"  {not_scored_note(m)}")


if __name__ == "__main__":
    run_stage(main)
