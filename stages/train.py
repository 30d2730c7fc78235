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
    features_dir: Annotated[Path, typer.Option(help="Feature stores: <dir>/<backbone>/<video>.zarr.")] = Path("features"),
    models_dir: Annotated[Path, typer.Option(help="Output: models/<backbone>/<head>/: fold<k>.pt and the bundle.")] = Path("models"),
    predictions: Annotated[Path, typer.Option(help="Output: per-frame predictions.")] = Path("reports/predictions.parquet"),
    folds_json: Annotated[Path, typer.Option("--folds", help="Output: the videos of each fold.")] = Path("reports/folds.json"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Cross-validate every head in train.heads on every backbone in features.backbones, and predict every frame;
    then train each on every video into a bundle (models/<backbone>/<head>/bundle.json + head.pt).

    Folds never split a climb: both views of one climb are always in the same fold.
    """
    import json

    import pandas as pd

    from pipeline.annotations import LabelPolicy
    from pipeline.atomic import atomic_output
    from pipeline.dataset import group_folds, load_video
    from pipeline.errors import BouldersegError
    from pipeline.bundle import train_bundles
    from pipeline.metrics import summarize
    from pipeline.store import read
    from pipeline.train import HeadConfig, Loss, cross_validate

    p = params.load(params_file)
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    classes = policy.model_classes
    backbones = [name for _, name in p.features.backbones.items()]
    if not backbones:
        raise BouldersegError(f"{params_file}: features.backbones lists no backbone to train on.")
    folds = group_folds({name: v.climb for name, v in p.videos.items()}, k=p.train.folds, seed=p.train.seed)
    heads = [HeadConfig.from_params(name, head) for name, head in p.train.heads.items()]
    f = p.features
    expect = {"fps": p.data.fps, "window": f.window, "stride": f.stride, "dtype": f.dtype}
    tables = []
    with atomic_output(models_dir, directory=True) as tmp_models:
        for backbone in backbones:
            data = [load_video(name, v.climb, labels_csv=labels_dir / f"{name}.csv",
                               persons_parquet=persons_dir / f"{name}.parquet",
                               features_zarr=features_dir / backbone / f"{name}.zarr", classes=classes,
                               dropped=policy.drop, expect=expect | {"backbone": backbone})
                    for name, v in p.videos.items()]
            loss, fit_args = Loss(**p.train.loss.model_dump()), {"seed": p.train.seed, "classes": classes,
                                                                 "min_person_fraction": p.train.min_person_fraction}
            table = cross_validate(data, folds, heads, models_dir=tmp_models / backbone, loss=loss,
                                   mode_window=p.train.mode_filter, **fit_args).assign(backbone=backbone)
            tables.append(table)
            store = read(features_dir / backbone / f"{data[0].name}.zarr").attrs
            info = {"backbone": {k: store[k] for k in ("backbone", "family", "level", "feature_dim", "weights",
                                                        "preprocessing", "fps", "window", "stride", "dtype")},
                    "labels": {"classes": p.labels.classes, "drop": p.labels.drop, "merge": p.labels.merge},
                    "mode_filter": p.train.mode_filter}
            train_bundles(data, heads, tmp_models / backbone, info=info, metrics=summarize(table, classes)[backbone],
                          loss=loss, **fit_args)
    table = pd.concat(tables, ignore_index=True)
    table = table[["backbone", *[c for c in table.columns if c != "backbone"]]]
    with atomic_output(predictions) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_output(folds_json) as tmp:
        tmp.write_text(json.dumps({f"fold{k}": sorted(v for v in folds if folds[v] == k)
                                   for k in sorted(set(folds.values()))}, indent=2) + "\n")
    typer.echo(f"{predictions}: {len(table)} frame predictions ({len(backbones)} backbone(s) x {len(heads)} head(s))")


if __name__ == "__main__":
    run_stage(main)
