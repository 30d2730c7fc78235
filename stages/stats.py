"""Stage `stats`: every video's per-frame labels -> reports/dataset.json and dataset plots."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage


def main(
    labels_dir: Annotated[Path, typer.Argument(help="Per-video label CSVs written by `boulderseg stage labels`.")] = Path("data/labels"),
    out_json: Annotated[Path, typer.Option("--out", help="Output statistics JSON.")] = Path("reports/dataset.json"),
    plots_dir: Annotated[Path, typer.Option("--plots", help="Output directory for dataset plots.")] = Path("reports/dataset"),
    persons_dir: Annotated[Path, typer.Option("--persons", help="Per-video person parquets: each video's share of frames that pass the person filter (null where the persons stage has not run).")] = Path("data/persons"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Dataset statistics: class shares, segment durations, imbalance, repetition and order variation, each video's
    person share, plots."""
    import json

    import pandas as pd
    import pyarrow.parquet as pq

    from pipeline.annotations.segments import LabelPolicy
    from pipeline.core.atomic import atomic_output
    from pipeline.core.errors import BouldersegError
    from pipeline.persons import LOW_SHARE, low_share_advice
    from pipeline.views.plots import fmt, plot_class_distribution, plot_rows, plot_temporal_distribution
    from pipeline.views.stats import dataset_stats

    p = params.load(params_file)
    fps = p.data.fps
    policy = LabelPolicy.from_params(p.labels, fps=fps)
    videos = {}
    for key in p.videos:
        csv = labels_dir / f"{key}.csv"
        if not csv.is_file():
            raise BouldersegError(f"{csv}: no labels for video '{key}'. Run `dvc repro labels` (or `boulderseg stage labels "
                                  f"{key} {csv}`) first.")
        videos[key] = pd.read_csv(csv, usecols=["label"])["label"].astype(str).tolist()
    s = dataset_stats(videos, fps=fps, classes=policy.classes, scope=policy.model_classes, bins=p.stats.bins)
    share = {key: round(float(pq.read_table(parquet, columns=["person"])["person"].to_numpy().mean()), 4)
             if (parquet := persons_dir / f"{key}.parquet").is_file() else None for key in p.videos}  # None: not run
    s["person_share"] = {"per_video": share, "threshold": LOW_SHARE,
                         "low": sorted(k for k, v in share.items() if v is not None and v < LOW_SHARE)}
    with atomic_output(out_json) as tmp:
        tmp.write_text(json.dumps(s, indent=2) + "\n")
    with atomic_output(plots_dir, directory=True) as tmp:
        plot_class_distribution(s, tmp / "class_distribution.png")
        plot_temporal_distribution(s, tmp / "temporal_distribution.png")
        for key, labels in videos.items():
            plot_rows(key, {"truth": labels}, policy.classes, fps=fps, out_png=tmp / "timelines" / f"{key}.png")
    for c, v in s["classes"].items():
        mean = "-" if v["mean_duration_s"] is None else f"{v['mean_duration_s']:.2f} s"
        typer.echo(f"{c:>12}: {100 * v['share']:5.1f}% of frames, {v['segments']} segments, mean {mean}")
    rep, order = s["repetition_score"], s["order_variation"]
    typer.echo(f"imbalance ratio {fmt(s['imbalance_ratio'])}, repetition {fmt(rep['mean'])} ± {fmt(rep['std'])}, "
               f"order variation {fmt(order)} ({s['videos']} videos; {out_json}, {plots_dir}/)")
    for key in s["person_share"]["low"]:
        typer.echo(f"low person share: {low_share_advice(key, share[key])}")


if __name__ == "__main__":
    run_stage(main)
