"""Stage `train`: cached features of every video -> cross-validated heads and per-frame predictions."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import params
from pipeline.cliutil import ParamsOpt, run_stage


def main(
    labels_dir: Annotated[Path, typer.Option(help="Per-video label CSVs.")] = Path("data/labels"),
    persons_dir: Annotated[Path, typer.Option(help="Per-video person parquets.")] = Path("data/persons"),
    features_dir: Annotated[Path | None, typer.Option(help="Per-video Zarr stores (default: features/ + features.backbone).")] = None,
    models_dir: Annotated[Path, typer.Option(help="Output: models/<head>/fold<k>.pt.")] = Path("models"),
    predictions: Annotated[Path, typer.Option(help="Output: per-frame predictions.")] = Path("reports/predictions.parquet"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Cross-validate every head in train.heads (folds never split a climb) and predict every frame."""
    from pipeline.annotations import LabelPolicy
    from pipeline.atomic import atomic_output
    from pipeline.dataset import group_folds, load_video
    from pipeline.train import HeadConfig, cross_validate

    p = params.load(params_file)
    features_dir = features_dir or Path("features") / p.features.backbone
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    classes = policy.model_classes
    data = [load_video(name, v.climb, labels_csv=labels_dir / f"{name}.csv",
                       persons_parquet=persons_dir / f"{name}.parquet",
                       features_zarr=features_dir / f"{name}.zarr", classes=classes, dropped=policy.drop)
            for name, v in p.videos.items()]
    folds = group_folds({name: v.climb for name, v in p.videos.items()}, k=p.train.folds, seed=p.train.seed)
    heads = [HeadConfig.from_params(name, head) for name, head in p.train.heads.items()]
    table = cross_validate(data, folds, heads, classes=classes, min_person_fraction=p.train.min_person_fraction,
                           seed=p.train.seed, models_dir=models_dir)
    with atomic_output(predictions) as tmp:
        table.to_parquet(tmp, index=False)
    typer.echo(f"{predictions}: {len(table)} frame predictions")


if __name__ == "__main__":
    run_stage(main)
