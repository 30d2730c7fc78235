"""Stage `train`: cached features of every video -> cross-validated heads and per-frame predictions."""
from __future__ import annotations

from pathlib import Path

from pipeline import params
from pipeline.annotations import LabelPolicy
from pipeline.atomic import atomic_output
from pipeline.dataset import group_folds, load_video
from pipeline.train import HeadConfig, cross_validate


def run(*, labels_dir: Path, persons_dir: Path, features_dir: Path, models_dir: Path, predictions: Path,
        params_file: Path = params.DEFAULT_PARAMS) -> int:
    p = params.load(params_file)
    cfg, videos = params.section(p, "train"), params.section(p, "videos")
    policy = LabelPolicy.from_params(params.section(p, "labels"), fps=float(params.section(p, "data.fps")))
    classes = policy.model_classes
    data = [load_video(name, v["climb"], labels_csv=labels_dir / f"{name}.csv",
                       persons_parquet=persons_dir / f"{name}.parquet",
                       features_zarr=features_dir / f"{name}.zarr", classes=classes, dropped=policy.drop)
            for name, v in videos.items()]
    folds = group_folds({name: v["climb"] for name, v in videos.items()}, k=cfg["folds"], seed=cfg["seed"])
    heads = [HeadConfig.from_params(name, section) for name, section in cfg["heads"].items()]
    table = cross_validate(data, folds, heads, classes=classes, min_person_fraction=cfg["min_person_fraction"],
                           seed=cfg["seed"], models_dir=models_dir)
    with atomic_output(predictions) as tmp:
        table.to_parquet(tmp, index=False)
    return len(table)
