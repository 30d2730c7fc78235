"""What the user looks at: `status`, `inspect video|features|timeline|crops`, `backbones`, `heads`, `verify`, and
`predict` with its phase table. `pipeline/cli.py` declares them."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, ParamsOpt

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def echo_json(value: object) -> None:
    """`value` as indented JSON on stdout."""
    import json

    typer.echo(json.dumps(value, indent=2))


def status(params_file: ParamsOpt = DEFAULT_PARAMS, as_json: JsonOpt = False) -> None:
    """One table, per video: climb, view, frames, person coverage, features present, and the stages `dvc status`
    would rerun: "unknown (DVC is busy)" while a `dvc repro` holds DVC's lock (--json: null)."""
    from pipeline.core import params
    from pipeline.views import summary

    found = summary.status(params.load(params_file), summary.stale_or_busy())
    echo_json(found) if as_json else typer.echo(summary.status_text(found))


def timeline(
    video: Annotated[str, typer.Argument(help="A video's key in the videos table.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write (default: reports/look/VIDEO/timeline.png).")] = None,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """One PNG of aligned rows over time: ground truth, person presence, and every trained head's prediction."""
    from pipeline.core import params
    from pipeline.views.look import predictions_of, video_frames
    from pipeline.views.plots import plot_rows

    p = params.load(params_file)
    df, manifest = video_frames(p, video)
    rows = ({"truth": df["label"].to_numpy()} if "label" in df else {}) | predictions_of(video)
    out = out or Path("reports/look") / video / "timeline.png"
    plot_rows(video, rows, p.labels.classes, fps=manifest["fps"], out_png=out,
              person=df["person"].to_numpy() if "person" in df else None)
    typer.echo(f"{out}: {', '.join([*rows, *(['person in frame'] if 'person' in df else [])])}")


def inspect_video(
    video: Annotated[str, typer.Argument(help="A video's key in the videos table.")],
    out: Annotated[Path | None, typer.Option(help="Contact sheet PNG (default: reports/look/VIDEO/contact.png).")] = None,
    params_file: ParamsOpt = DEFAULT_PARAMS,
    as_json: JsonOpt = False,
) -> None:
    """Source metadata, frames on disk, label distribution, person coverage, feature stores; and a contact sheet
    of evenly spaced frames, each captioned with its index, time and label, its person box drawn."""
    from pipeline.core import params
    from pipeline.views import summary
    from pipeline.views.look import contact_sheet, video_frames

    p = params.load(params_file)
    df, manifest = video_frames(p, video)
    facts = summary.video(p, video, df, manifest)
    out = out or Path("reports/look") / video / "contact.png"
    contact_sheet(Path("data/frames") / video, df, out)
    if as_json:
        echo_json(facts | {"contact_sheet": str(out)})
    else:
        typer.echo(f"{summary.video_text(facts)}\n  contact sheet: {out}")


def inspect_features(
    backbone: Annotated[str | None, typer.Argument(help="Only this backbone's stores.")] = None,
    features_dir: Annotated[Path, typer.Option(help="Where the stores are.")] = Path("features"),
    as_json: JsonOpt = False,
) -> None:
    """Per video and backbone: shape, dtype, chunks, bytes on disk; and the recorded configuration, what every store
    of a backbone records shown once."""
    from pipeline.views.tables import feature_stores, features_report

    stores = feature_stores(features_dir, backbone)
    if as_json:
        echo_json(stores)
    elif not stores:
        typer.echo(f"no feature stores under {features_dir}" + (f"/{backbone}" if backbone else ""))
    else:
        typer.echo(features_report(stores))


def inspect_crops(
    video: Annotated[str, typer.Argument(help="A video's key in the videos table.")],
    backbone: Annotated[str | None, typer.Option(help="Whose feature store (default: the first backbone "
                                                      "features.backbones lists whose store has crop_boxes).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Contact sheet PNG (default: reports/look/VIDEO/crops-BACKBONE.png).")] = None,
    every: Annotated[int | None, typer.Option(min=1, help="Show every K-th window (default: up to 24 evenly spaced).")
                     ] = None,
    params_file: ParamsOpt = DEFAULT_PARAMS,
    as_json: JsonOpt = False,
) -> None:
    """A contact sheet of the crops features.crop climber fed a backbone: per window shown, its centre frame (the
    stored JPG; the backbone got the same square from the source decoded at features.crop_short_side) cut to
    its crop box, the climber's track box drawn, captioned with the window, its time and the share of the crop the
    climber fills ("whole frame": the window saw no climber and was fed the whole frame). Prints one line: windows,
    median and range of that share, whole-frame windows (--json: those, and every tile's)."""
    from pipeline.core import params
    from pipeline.views.crops import inspect_crops as sheet, summary_line
    from pipeline.views.look import artifacts, video_frames

    p = params.load(params_file)
    video_frames(p, video)  # the video is in a table and its frames were written
    persons, features_dir = artifacts(p, video)
    found = sheet(video, frames_dir=Path("data/frames") / video, persons=persons, features_dir=features_dir,
                  listed=[name for _, name in p.features.backbones.items()], backbone=backbone, out_png=out,
                  every=every)
    if as_json:
        echo_json(found)
    else:
        typer.echo(f"{summary_line(video, found['backbone'], found['summary'])}\n  contact sheet: "
                   f"{found['contact_sheet']}")


def list_backbones(params_file: ParamsOpt = DEFAULT_PARAMS) -> None:
    """List every backbone: family, level, feature dim, frames, input, parameters, weights and whether they are here.

    Level: frame (per-frame features, stacked or averaged over the window) or segment (one per clip).
    `*` marks the backbones features.backbones lists; `present`: the weights are in runtime.weights_dir.
    """
    from pipeline.core import params
    from pipeline.views.tables import backbones_table

    p = params.load(params_file)
    typer.echo(backbones_table(weights_dir=p.runtime.weights_dir, pooling=p.features.pooling, fps=p.data.fps,
                               listed=[name for _, name in p.features.backbones.items()]))


def list_heads() -> None:
    """List every segmentation head: kind (per-window or whole-sequence), parameters at D = 2048, params keys."""
    from pipeline.views.tables import heads_table

    typer.echo(heads_table())


def verify(
    keys: Annotated[list[str] | None, typer.Argument(help="Videos to check (default: every video of both tables).")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Rerun exactly the stages that rebuild what is broken, then check again.")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
    as_json: JsonOpt = False,
) -> None:
    """Check every artifact against the others and its record: frames = label rows = person rows, every JPG
    decodes, feature stores read, are finite, cover the frames and record the current params; and DVC's own
    hash check. Each problem names the video and the stage that rebuilds it; exits 1 if there is one (--json: the
    problems, after any --fix, as one object; the rest goes to stderr)."""
    import subprocess
    from pipeline.core import params
    from pipeline.core.errors import BouldersegError
    from pipeline.views.verify import stages_to_rerun, verify as check

    p = params.load(params_file)
    problems = check(p, keys)
    for problem in problems:
        typer.echo(str(problem), err=as_json)
    if problems and fix:
        stages = stages_to_rerun(problems)  # upstream first: --single-item runs them in the order given
        typer.echo(f"rerunning {', '.join(stages)}", err=as_json)
        if subprocess.run(["dvc", "repro", "--force", "--single-item", *stages],
                          stdout=2 if as_json else None).returncode:
            raise BouldersegError(f"`dvc repro` of {', '.join(stages)} failed (its message is above).")
        problems = check(p, keys)
        for problem in problems:
            typer.echo(f"still: {problem}", err=as_json)
    if as_json:
        echo_json({"videos": keys or [*p.videos, *p.unannotated], "problems": [
            {"video": x.key, "stage": x.stage, "what": x.what} for x in problems],
                   "rerun": stages_to_rerun(problems) if problems else []})
    if problems:
        raise BouldersegError(f"{len(problems)} problem(s); `boulderseg verify --fix"
                              f"{' ' + ' '.join(keys) if keys else ''}` reruns {', '.join(stages_to_rerun(problems))}.")
    typer.echo(f"verified {len(keys or [*p.videos, *p.unannotated])} video(s): every artifact agrees with the others, "
               "its record and dvc.lock.", err=as_json)


def predict(
    video: Annotated[Path | None, typer.Argument(help="The video to segment.", dir_okay=False)] = None,
    model: Annotated[Path, typer.Option(help="A model bundle: the directory holding its bundle.json, "
                                             "models/<backbone>/<head> (`dvc repro` trains them).")] = ...,
    out: Annotated[Path | None, typer.Option(help="Where to write VIDEO's segmentation (created); required with "
                                                  "VIDEO, unused with --all-unannotated.")] = None,
    all_unannotated: Annotated[bool, typer.Option("--all-unannotated", help="Segment every video of params.yaml's `unannotated` table from its stored persons and features, into data/unannotated/predicted/<key>/.")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Segment a climb nobody annotated into its phases with a trained model bundle; the dataset is not touched.

    Frames, persons, features, head and post-processing are redone as the bundle was trained (all read
    from its bundle.json); params.yaml's runtime section (device, workers) only sets the speed, and
    defaults apply where there is no params.yaml. OUT gets segments.csv and segments.xlsx (the
    annotators' layout and words: correct it in Excel and give it back with `boulderseg add`),
    frames.csv (frame,time,label,confidence,person), timeline.png, report.json, and work/ (frames, persons,
    features; a rerun reuses them). A frame with nobody in it (the person filter removed it) is labels.default
    ("nothing") everywhere; frames.csv keeps the head's confidence in what it predicted there.
    """
    from pipeline.annotations.videotable import UNANNOTATED
    from pipeline.core import params
    from pipeline.core.errors import BouldersegError
    from pipeline.views.predict import segment_unannotated, segment_video

    if all_unannotated == (video is not None):
        raise BouldersegError("give either a VIDEO and --out DIR, or --all-unannotated.")
    if not (model / "bundle.json").is_file():
        bundles = sorted(b.parent.as_posix() for b in Path("models").glob("*/*/bundle.json"))
        raise BouldersegError(f"{model}: not a model bundle (no bundle.json). Bundles here: "
                              f"{', '.join(bundles) or 'none yet'}. `dvc repro` trains one per row of params.yaml's "
                              "train section (its stage: train-<family>@<backbone>-<head>).")
    if all_unannotated:
        p = params.load(params_file)
        if not p.unannotated:
            raise BouldersegError(f"{params_file}: the unannotated table is empty; `boulderseg add VIDEO` adds one.")
        for key, v in p.unannotated.items():
            result = segment_unannotated(key, Path(v.video), model)
            sheet = UNANNOTATED / "predicted" / key / "segments.xlsx"
            in_place = "" if Path(v.video).parent == Path("data/raw/videos") else " --no-copy"  # where it was added
            command = f"boulderseg add {shlex.quote(v.video)} {shlex.quote(str(sheet))} --key {key}{in_place}"
            typer.echo(f"{sheet.parent}: {len(result.segments)} phases, {result.report['attempts']} attempt(s); "
                       f"correct {sheet.name}, then `{command}` annotates the video")
        return
    if out is None:
        raise BouldersegError("--out DIR is needed with VIDEO: where to write its segmentation.")
    if not video.is_file():
        raise BouldersegError(f"{video}: video not found.")
    runtime = params.load(params_file).runtime if params_file.exists() else params.Runtime()
    result = segment_video(video, model, out, runtime=runtime)
    typer.echo(phase_table(result.report))
    typer.echo(f"{out}: segments.csv, segments.xlsx ({len(result.segments)} phases), frames.csv, timeline.png, "
               "report.json")


def phase_table(report: dict) -> str:
    """`predict`'s report as a coach reads it: per phase total, mean and count (frames with nobody in them in the
    default class's), then the attempts."""
    lines = [f"{'phase':10s} {'total s':>8s} {'mean s':>7s} {'count':>5s}"]
    for name, p in sorted(report["phases"].items(), key=lambda kv: -kv[1]["total_s"]):
        lines.append(f"{name:10s} {p['total_s']:8.2f} {p['mean_s']:7.2f} {p['count']:5d}")
    first = report["time_to_first_attempt_s"]
    lines += [f"attempts (climbing phases): {report['attempts']}",
              f"time to the first attempt: {'none' if first is None else f'{first:.2f} s'}",
              "reading before each attempt: " + (", ".join(f"{s:.2f} s" for s in report["reading_before_attempt_s"])
                                                 or "none"),
              f"nobody in frame: {100 * report['nobody_in_frame_share']:.1f} % of the video, counted as "
              f"{report['nobody_in_frame_label']} above"]
    return "\n".join(lines)
