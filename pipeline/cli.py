"""`boulderseg`: every pipeline stage as a command on explicit paths, plus the dataset tools.

The stage commands are the `main` of each `stages/<name>.py`, the same function dvc.yaml runs as
`python -m stages.<name>`; heavy imports happen inside them, so `--help` stays fast.
"""
import importlib
import sys
from pathlib import Path
from typing import Annotated

from pipeline.errors import exit_130_on_interrupt

exit_130_on_interrupt()

import typer  # noqa: E402 - after the hook: Ctrl-C while importing is one line too

from pipeline import commands  # noqa: E402
from pipeline.cliutil import DEFAULT_PARAMS, ParamsOpt, friendly  # noqa: E402

STAGES = ("labels", "stats", "frames", "persons", "features", "folds", "train", "evaluate")

app = typer.Typer(
    help="Bouldering video segmentation: annotations + videos -> frames, person filter, "
    "cached backbone features, trained and evaluated heads. `dvc repro` runs every stage; "
    "each command here runs one stage on one item, reading its sections of params.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in STAGES:
    app.command(_name)(friendly(importlib.import_module(f"stages.{_name}").main))
for _command in (commands.add, commands.remove, commands.status, commands.timeline, commands.predict,
                 commands.verify, commands.repro, commands.profile, commands.airgapped):
    app.command()(friendly(_command))


@app.command()
@friendly
def validate(params_file: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Check every annotation against its video and the videos table, without running the pipeline.

    Reports every problem at once (unknown labels, bad times, missing columns, empty sheets,
    annotations without a video and videos without an annotation) and exits 1 if there is one.
    """
    from pipeline import params
    from pipeline.errors import BouldersegError, warn_all
    from pipeline.validate import validate as check

    report = check(params.load(params_file))
    for line in report.summaries:
        typer.echo(f"ok  {line}")
    warn_all(report.warnings)
    if report.problems:
        raise BouldersegError(f"{len(report.problems)} problem(s) in the dataset:\n" + "\n".join(report.problems))
    typer.echo(f"{len(report.summaries)} videos ready, {len(report.warnings)} warning(s).")


@app.command("backbones")
@friendly
def list_backbones(params_file: ParamsOpt = DEFAULT_PARAMS) -> None:
    """List every backbone: family, level, feature dim, frames, input, parameters, weights and whether they are here.

    Level: frame (per-frame features, stacked or averaged over the window) or segment (one per clip).
    `*` marks the backbones features.backbones lists; `present`: the weights are in runtime.weights_dir.
    """
    from pipeline import params
    from pipeline.inspect import backbones_table

    p = params.load(params_file)
    typer.echo(backbones_table(weights_dir=p.runtime.weights_dir, pooling=p.features.frame_pooling, fps=p.data.fps,
                               listed=[name for _, name in p.features.backbones.items()]))


@app.command("heads")
@friendly
def list_heads() -> None:
    """List every segmentation head: kind (per-window or whole-sequence), parameters at D = 2048, params keys."""
    from pipeline.inspect import heads_table

    typer.echo(heads_table())


@app.command()
@friendly
def score(
    truth: Annotated[Path, typer.Argument(help="Ground truth: a label CSV (frame,label), or a directory of them.")],
    pred: Annotated[Path, typer.Argument(help="Predictions: a label CSV, or a directory of them paired by name.")],
    ignore: Annotated[list[str], typer.Option("--ignore", help="A class that is not scored (background); repeat.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score any segmentation against any ground truth: accuracy, Edit, F1@10/25/50, per-class accuracy (percent).

    Edit and F1@k follow MS-TCN: segments are runs of one label; ignored classes form no segment;
    Edit is averaged over videos, F1 counts are summed over them.
    """
    import json

    from pipeline.score import score_files

    s = score_files(truth, pred, ignore)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo(f"{s['videos']} video(s), {s['frames']} scored frames")
    for key in ("accuracy", "edit", "f1@10", "f1@25", "f1@50"):
        typer.echo(f"{key:>10s} {s[key]:6.2f}")
    for c, v in s["per_class_accuracy"].items():
        typer.echo(f"{c:>10s} {v:6.2f}  (accuracy)")


export_app = typer.Typer(help="Write the feature store in other tools' layouts.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("mstcn")
@friendly
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
    from pipeline import params
    from pipeline.annotations import LabelPolicy
    from pipeline.errors import BouldersegError
    from pipeline.export import export_mstcn as export

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


inspect_app = typer.Typer(help="Look at what the pipeline stored.", no_args_is_help=True)
app.add_typer(inspect_app, name="inspect")


inspect_app.command("video")(friendly(commands.inspect_video))


@inspect_app.command("features")
@friendly
def inspect_features(
    backbone: Annotated[str | None, typer.Argument(help="Only this backbone's stores.")] = None,
    features_dir: Annotated[Path, typer.Option(help="Where the stores are.")] = Path("features"),
) -> None:
    """Per video and backbone: shape, dtype, chunks, bytes on disk and the recorded configuration."""
    from pipeline.inspect import features_report

    typer.echo(features_report(features_dir, backbone))


@app.command()
@friendly
def sample(
    root: Annotated[Path, typer.Argument(help="Where to write videos/ and annotations/.")] = Path("data/raw"),
    climbs: Annotated[int, typer.Option(help="Number of climbs (each has a face and a profile view).")] = 4,
    seconds: Annotated[float, typer.Option(help="Length of each video.")] = 10.0,
) -> None:
    """Generate the sample dataset and print its `videos:` table for params.yaml (needs the sample extra)."""
    import yaml

    from pipeline.sample import make_sample

    videos = make_sample(root, climbs=climbs, seconds=seconds)
    sys.stdout.write(yaml.safe_dump({"videos": videos}, sort_keys=False))
