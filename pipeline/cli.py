"""`boulderseg`: every pipeline stage as a command on explicit paths (what dvc.yaml runs)."""
import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import BouldersegError
from pipeline.params import DEFAULT_PARAMS

app = typer.Typer(
    help="Bouldering video segmentation: annotations + videos -> frames, person filter, "
    "cached backbone features, trained and evaluated heads. `dvc repro` runs every stage; "
    "each command here runs one stage on one item, reading its section of params.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read the stage's section from.")]


def _friendly(fn: Callable) -> Callable:
    """Print a BouldersegError as one clear message and exit 1; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BouldersegError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: no partial output was kept; rerun to finish.", err=True)
            raise typer.Exit(130) from None

    return wrapper


def command(fn: Callable, name: str | None = None) -> Callable:
    return app.command(name)(_friendly(fn))


@command
def labels(
    video: Annotated[str, typer.Argument(help="The video's key under `videos` in params.yaml.")],
    out_csv: Annotated[Path, typer.Argument(help="Output CSV: frame,time,label, one row per frame.")],
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Turn one video's annotation rows into per-frame labels at data.fps (labels section; gaps: labels.default)."""
    from stages import labels as stage

    typer.echo(f"{out_csv}: {stage.run(video, out_csv, params)}")


@command
def validate(params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Check every annotation against its video and the videos table, without running the pipeline.

    Reports every problem at once (unknown labels, bad times, missing columns, empty sheets,
    annotations without a video and videos without an annotation) and exits 1 if there is one.
    """
    from pipeline import params as params_mod
    from pipeline.errors import warn
    from pipeline.validate import validate as check

    p = params_mod.load(params)
    report = check(p, fps=float(params_mod.section(p, "data.fps")))
    for line in report.summaries:
        typer.echo(f"ok  {line}")
    for message in report.warnings:
        warn(message)
    if report.problems:
        raise BouldersegError(f"{len(report.problems)} problem(s) in the dataset:\n" + "\n".join(report.problems))
    typer.echo(f"{len(report.summaries)} videos ready, {len(report.warnings)} warning(s).")


@command
def stats(
    labels_dir: Annotated[Path, typer.Argument(help="Per-video label CSVs written by `boulderseg labels`.")] = Path("data/labels"),
    out_json: Annotated[Path, typer.Option("--out", help="Output statistics JSON.")] = Path("reports/dataset.json"),
    plots_dir: Annotated[Path, typer.Option("--plots", help="Output directory for dataset plots.")] = Path("reports/dataset"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Dataset statistics: class shares, segment durations, imbalance, repetition and order variation, plots."""
    from pipeline.plots import fmt
    from stages import stats as stage

    s = stage.run(labels_dir, out_json, plots_dir, params)
    for c, v in s["classes"].items():
        mean = "-" if v["mean_duration_s"] is None else f"{v['mean_duration_s']:.2f} s"
        typer.echo(f"{c:>12}: {100 * v['share']:5.1f}% of frames, {v['segments']} segments, mean {mean}")
    rep, order = s["repetition_score"], s["order_variation"]
    typer.echo(f"imbalance ratio {fmt(s['imbalance_ratio'])}, repetition {fmt(rep['mean'])} ± {fmt(rep['std'])}, "
               f"order variation {fmt(order)} ({s['videos']} videos; {out_json}, {plots_dir}/)")


def _per_video_command(name: str, doc: str, *, src_help: str, out_help: str) -> None:
    """Register `boulderseg NAME SRC OUT`, which runs stages/NAME.py on one video."""

    def run(
        src: Annotated[Path, typer.Argument(help=src_help)],
        out: Annotated[Path, typer.Argument(help=out_help)],
        params: ParamsOpt = DEFAULT_PARAMS,
    ) -> None:
        stage = importlib.import_module(f"stages.{name}")
        typer.echo(f"{out}: {stage.run(src, out, params)}")

    run.__doc__ = doc
    command(run, name)


_per_video_command(
    "frames", "Decode one video at data.fps into numbered JPG frames (resize and quality: frames section).",
    src_help="Video file (anything ffmpeg decodes).", out_help="Output directory for 000000.jpg, 000001.jpg, …")
_per_video_command(
    "persons", "Detect persons with YOLO in every frame; frames without one are marked keep=false.",
    src_help="A video's frames directory.", out_help="Output parquet: one row per frame.")
_per_video_command(
    "features", "Extract frozen-backbone features over sliding windows into a chunked Zarr store.",
    src_help="A video's frames directory.", out_help="Output Zarr store, e.g. features/x3d_xs/VIDEO.zarr.")


@command
def train(
    labels_dir: Annotated[Path, typer.Option(help="Per-video label CSVs.")] = Path("data/labels"),
    persons_dir: Annotated[Path, typer.Option(help="Per-video person parquets.")] = Path("data/persons"),
    features_dir: Annotated[Path | None, typer.Option(help="Per-video Zarr stores (default: features/ + features.backbone).")] = None,
    models_dir: Annotated[Path, typer.Option(help="Output: models/<head>/fold<k>.pt.")] = Path("models"),
    predictions: Annotated[Path, typer.Option(help="Output: per-frame predictions.")] = Path("reports/predictions.parquet"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Cross-validate every head in train.heads (folds never split a climb) and predict every frame."""
    from pipeline import params as params_mod
    from stages import train as stage

    if features_dir is None:
        features_dir = Path("features") / params_mod.section(params_mod.load(params), "features.backbone")
    n = stage.run(labels_dir=labels_dir, persons_dir=persons_dir, features_dir=features_dir,
                  models_dir=models_dir, predictions=predictions, params_file=params)
    typer.echo(f"{predictions}: {n} frame predictions")


@command
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions written by `boulderseg train`.")] = Path("reports/predictions.parquet"),
    metrics_json: Annotated[Path, typer.Option("--metrics", help="Output metrics JSON.")] = Path("reports/metrics.json"),
    plots_dir: Annotated[Path, typer.Option("--plots", help="Output directory for PNG plots.")] = Path("reports/plots"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Frame accuracy and per-class accuracy per fold, mean ± std; confusion and timeline plots."""
    from stages import evaluate as stage

    metrics = stage.run(predictions, metrics_json, plots_dir, params)
    for head, m in metrics.items():
        typer.echo(f"{head}: frame accuracy {m['accuracy']['mean']:.3f} ± {m['accuracy']['std']:.3f}")


@command
def sample(
    root: Annotated[Path, typer.Argument(help="Where to write videos/ and annotations/.")] = Path("data/raw"),
    climbs: Annotated[int, typer.Option(help="Number of climbs (each has a face and a profile view).")] = 4,
    seconds: Annotated[float, typer.Option(help="Length of each video.")] = 10.0,
) -> None:
    """Generate the sample dataset and print its `videos:` table for params.yaml."""
    import yaml

    from pipeline.sample import make_sample

    videos = make_sample(root, climbs=climbs, seconds=seconds)
    sys.stdout.write(yaml.safe_dump({"videos": videos}, sort_keys=False))
