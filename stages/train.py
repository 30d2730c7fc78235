"""Stage `train`: one backbone's cached features (or a fused pair's) + one head -> cross-validated predictions and a
model bundle."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pipeline.core import params
from pipeline.core.commandline import ParamsOpt, run_stage
from pipeline.warm.client import handoff


def main(
    backbone: Annotated[str, typer.Argument(help="A backbone whose stores are under --features-dir, or several joined by "
                                                 "'+' (a fusion, as train.fusions lists: features concatenated per window).")],
    head: Annotated[str, typer.Argument(help="A head listed in train.heads (`boulderseg heads` lists them all).")],
    labels_dir: Annotated[Path, typer.Option(help="Per-video label CSVs.")] = Path("data/labels"),
    persons_dir: Annotated[Path, typer.Option(help="Per-video person parquets.")] = Path("data/persons"),
    features_dir: Annotated[Path, typer.Option(help="Feature stores: <dir>/<backbone>/<video>.zarr.")] = Path("features"),
    folds_json: Annotated[Path, typer.Option("--folds", help="The folds stage's fold -> videos.")] = Path("reports/folds.json"),
    models_dir: Annotated[Path, typer.Option(help="Output: <dir>/<backbone>/<head>/: fold<k>.pt and the bundle.")] = Path("models"),
    predictions_dir: Annotated[Path, typer.Option("--predictions", help="Output: <dir>/<backbone>/<head>.parquet.")] = Path("reports/predictions"),
    params_file: ParamsOpt = params.DEFAULT_PARAMS,
) -> None:
    """Cross-validate one head on one backbone's features (or a fusion's) over the climb-grouped folds and predict
    every frame; then train it on every video into a bundle (bundle.json + head.pt) that `predict` loads."""
    p = params.load(params_file)
    handoff(p.runtime.warm_seconds)  # returns only where the stage must run in this process
    import json

    import torch

    from pipeline.annotations.segments import LabelPolicy
    from pipeline.core.atomic import atomic_output
    from pipeline.core.errors import BouldersegError
    from pipeline.core.names import under
    from pipeline.features.store import attrs
    from pipeline.learning.bundle import train_bundle
    from pipeline.learning.dataset import fuse, load_video
    from pipeline.learning.metrics import summarize
    from pipeline.learning.train import HeadConfig, Loss, cross_validate

    # Heads are small: one thread trains them as fast as two on 2 cores (the six sample heads: 86.1 s against
    # 84.5 s), to the same bits whatever the core count, and leaves the other cores to stages running beside it.
    torch.set_num_threads(1)
    if head not in p.train.heads:
        raise BouldersegError(f"{params_file}: train.heads has no '{head}'; it lists {', '.join(p.train.heads)}.")
    members = backbone.split("+")  # a fusion's backbones, in the order their features are concatenated
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    classes = policy.model_classes
    folds = {video: int(k.removeprefix("fold")) for k, vs in json.loads(folds_json.read_text()).items() for video in vs}
    if set(p.videos) - folds.keys():
        raise BouldersegError(f"{folds_json}: no fold for {sorted(set(p.videos) - folds.keys())}; rerun the folds stage.")
    f = p.features
    stored = {m: {name: attrs(features_dir / m / f"{name}.zarr") for name in p.videos} for m in members}
    for m in members:
        for key, fix in (("precision", "on one kind of device (runtime.device)"),
                         ("skip_static", "with one features.skip_static"),
                         ("pose_smoothing", "with one features.pose_smoothing")):
            made = {name: a.get(key) for name, a in stored[m].items()}
            if len(set(map(str, made.values()))) > 1:
                kinds = {kind: [n for n, k in made.items() if str(k) == kind] for kind in sorted(set(map(str, made.values())))}
                raise BouldersegError(f"{features_dir / m}: stores of different {key} in one training set ("
                                      + "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items()) + f"). Extract every "
                                      f"video {fix}, deleting the others' stores, then rerun.")
    data = [fuse([load_video(name, v.climb, labels_csv=labels_dir / f"{name}.csv", dropped=policy.drop,
                             classes=classes, persons_parquet=persons_dir / f"{name}.parquet",
                             features_zarr=features_dir / m / f"{name}.zarr",
                             expect=store_expect(p, m))
                  for m in members])
            for name, v in p.videos.items()]
    cfg, loss = HeadConfig.from_params(head, p.train.heads[head]), Loss(**p.train.loss.model_dump())
    fit_args = {"seed": p.train.seed, "classes": classes, "min_person_fraction": p.train.min_person_fraction,
                "select": p.train.select, "inner_folds": p.train.inner_folds}
    bundle_dir, out = under(models_dir, backbone, head), under(predictions_dir, backbone, head, suffix=".parquet")
    say = progress(f"train {backbone}-{head}")
    with atomic_output(bundle_dir, directory=True) as tmp:
        table = cross_validate(data, folds, cfg, models_dir=tmp, loss=loss, mode_window=p.train.mode_filter,
                               say=say, **fit_args).assign(backbone=backbone)
        info = {"backbone": store_info(stored[members[0]]) if len(members) == 1 else
                {"backbone": backbone, "members": [store_info(stored[m]) for m in members]}
                | {k: p.data.fps if k == "fps" else getattr(f, k) for k in ("fps", "window", "stride", "dtype")},
                "labels": {"classes": p.labels.classes, "drop": p.labels.drop, "merge": p.labels.merge,
                           "map": p.labels.map, "default": p.labels.default},
                "frames": p.frames.model_dump(), "persons": p.persons.model_dump(), "weights": p.weights.model_dump(),
                "mode_filter": p.train.mode_filter}  # what `boulderseg predict` needs to redo every step for a new video
        applied = table.assign(pred=table["pred_mode"]) if p.train.mode_filter > 1 else table  # what predict applies
        say(f"bundle: training on all {len(data)} videos")
        train_bundle(data, cfg, tmp, info=info, cv_metrics=summarize(applied, classes)[backbone][head], loss=loss,
                     say=lambda line: say(f"bundle: {line}"), **fit_args)
    with atomic_output(out) as tmp:
        table[["backbone", *[c for c in table.columns if c != "backbone"]]].to_parquet(tmp, index=False)
    typer.echo(f"{out}: {len(table)} frame predictions; bundle in {bundle_dir}")


def store_expect(p: params.Params, backbone: str) -> dict:
    """What a feature store must record to train `backbone` under params `p`: a store made with other windows, dtype
    or crop (`preprocessing.crop`: the crop keys, or None for whole frames) is refused, not trained on."""
    f = p.features
    return {"fps": p.data.fps, "window": f.window, "stride": f.stride, "dtype": f.dtype, "backbone": backbone,
            "preprocessing": {"crop": f.crop_settings() if f.crop == "climber" else None}}


def progress(prefix: str) -> Callable[[str], None]:
    """A `say` for the training code: each line to stderr at once, after `prefix` and with the seconds since this
    call, so `dvc repro` (which passes a stage's stderr through, also from the warm process) shows where it is."""
    start = time.monotonic()
    return lambda line: print(f"{prefix}: {line} [{time.monotonic() - start:.0f} s]", file=sys.stderr, flush=True)


def store_info(stored: dict[str, dict]) -> dict:
    """What a bundle records of one backbone's stores (`boulderseg predict` recomputes a new video's the same way)."""
    first = next(iter(stored.values()))
    return ({k: first[k] for k in ("backbone", "family", "level", "feature_dim", "weights", "preprocessing", "fps",
                                   "window", "stride", "dtype", "precision")}
            | {k: first[k] for k in ("skip_static", "pose_smoothing") if k in first}  # recorded only when set
            | {"frame_heights": sorted({a.get("frame_height") for a in stored.values()})})


if __name__ == "__main__":
    run_stage(main)
