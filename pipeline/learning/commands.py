"""`score` any segmentation and `export mstcn` the features for other tools. `pipeline/cli.py` declares them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, ParamsOpt


def score(
    truth: Annotated[Path, typer.Argument(help="Ground truth: a label CSV (frame,label), or a directory of them.")],
    pred: Annotated[Path, typer.Argument(help="Predictions: a label CSV, or a directory of them paired by name.")],
    ignore: Annotated[list[str], typer.Option("--ignore", help="A class that is not scored (background); repeat.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score any segmentation against any ground truth: accuracy, Edit, F1@10/25/50, per-class accuracy (percent).

    Edit and F1@k follow MS-TCN: segments are runs of one label; ignored classes form no segment;
    Edit is averaged over videos, F1 counts are summed over them. A video whose truth is all ignored is not scored.
    """
    import json

    from pipeline.learning.score import score_files

    s = score_files(truth, pred, ignore)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo(f"{s['videos']} video(s), {s['frames']} scored frames")
    if "not_scored" in s:
        typer.echo(f"not scored (every frame ignored in the truth and the prediction), in no figure: {', '.join(s['not_scored'])}")
    for key in ("accuracy", "edit", "f1@10", "f1@25", "f1@50"):
        typer.echo(f"{key:>10s} {'not scored' if s[key] is None else f'{s[key]:6.2f}'}")
    for c, v in s["per_class_accuracy"].items():
        typer.echo(f"{c:>10s} {v:6.2f}  (accuracy)")


def export_mstcn(
    out_dir: Annotated[Path, typer.Argument(help="Where to write features/, groundTruth/, mapping.txt, splits/.")],
    backbone: Annotated[str | None, typer.Option(help="Whose features (default: the first listed).")] = None,
    level: Annotated[str, typer.Option(help="frame: one row per frame (MS-TCN's own); window: one per window.")] = "frame",
    raw: Annotated[bool, typer.Option("--raw", help="Every frame's own label; default: the leaderboard's protocol "
                                                    "(frames it does not score are MS-TCN's `background`).")] = False,
    folds_json: Annotated[Path, typer.Option("--folds", help="The folds stage's output.")] = Path("reports/folds.json"),
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """MS-TCN's data layout from our features, labels and folds: MS-TCN, ASFormer or DiffAct run on it unmodified.

    The ground truth follows the leaderboard's protocol (dropped classes and frames the person filter removed are
    MS-TCN's `background`), so MS-TCN's Edit and F1@k score what the leaderboard scores; --raw writes every label."""
    from pipeline.annotations.segments import LabelPolicy
    from pipeline.core import params
    from pipeline.core.errors import BouldersegError
    from pipeline.learning.export import export_mstcn as export

    p = params.load(params_file)
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    listed = [name for _, name in p.features.backbones.items()]
    backbone = backbone or listed[0]
    if level not in ("frame", "window"):
        raise BouldersegError(f"--level is '{level}': use frame or window.")
    n = export(out_dir, videos=list(p.videos), classes=policy.model_classes, dropped=list(policy.drop),
               min_person_fraction=p.train.min_person_fraction, folds_json=folds_json, labels_dir=Path("data/labels"),
               persons_dir=Path("data/persons"), features_dir=Path("features"), backbone=backbone, level=level, raw=raw)
    typer.echo(f"{out_dir}: {n} videos of {backbone} features ({level} level, "
               f"{'raw labels' if raw else 'the leaderboard protocol'})")
