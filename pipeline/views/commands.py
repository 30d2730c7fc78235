"""What the user looks at: `status`, `timeline`, `inspect video|features`, `backbones`, `heads`, `verify`, and
`predict` with its phase table. `pipeline/cli.py` declares them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, ParamsOpt


def status(params_file: ParamsOpt = DEFAULT_PARAMS) -> None:
    """One table, per video: climb, view, frames, person coverage, features present, and the stages `dvc status` would rerun."""
    from pipeline.core import params
    from pipeline.views.look import stale_stages, status_table

    typer.echo(status_table(params.load(params_file), stale_stages()))


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
) -> None:
    """Source metadata, frames on disk, label distribution, person coverage, feature stores; and a contact sheet
    of evenly spaced frames, each captioned with its index, time and label, its person box drawn."""
    from pipeline.core import params
    from pipeline.views.look import contact_sheet, describe, video_frames

    p = params.load(params_file)
    df, manifest = video_frames(p, video)
    typer.echo(describe(p, video, df, manifest))
    out = out or Path("reports/look") / video / "contact.png"
    contact_sheet(Path("data/frames") / video, df, out)
    typer.echo(f"  contact sheet: {out}")


def inspect_features(
    backbone: Annotated[str | None, typer.Argument(help="Only this backbone's stores.")] = None,
    features_dir: Annotated[Path, typer.Option(help="Where the stores are.")] = Path("features"),
) -> None:
    """Per video and backbone: shape, dtype, chunks, bytes on disk and the recorded configuration."""
    from pipeline.views.tables import features_report

    typer.echo(features_report(features_dir, backbone))


def list_backbones(params_file: ParamsOpt = DEFAULT_PARAMS) -> None:
    """List every backbone: family, level, feature dim, frames, input, parameters, weights and whether they are here.

    Level: frame (per-frame features, stacked or averaged over the window) or segment (one per clip).
    `*` marks the backbones features.backbones lists; `present`: the weights are in runtime.weights_dir.
    """
    from pipeline.core import params
    from pipeline.views.tables import backbones_table

    p = params.load(params_file)
    typer.echo(backbones_table(weights_dir=p.runtime.weights_dir, pooling=p.features.frame_pooling, fps=p.data.fps,
                               listed=[name for _, name in p.features.backbones.items()]))


def list_heads() -> None:
    """List every segmentation head: kind (per-window or whole-sequence), parameters at D = 2048, params keys."""
    from pipeline.views.tables import heads_table

    typer.echo(heads_table())


def verify(
    keys: Annotated[list[str] | None, typer.Argument(help="Videos to check (default: every video of both tables).")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Rerun exactly the stages that rebuild what is broken, then check again.")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Check every artifact against the others and its record: frames = label rows = person rows, every JPG
    decodes, feature stores read, are finite, cover the frames and record the current params; and DVC's own
    hash check. Each problem names the video and the stage that rebuilds it; exits 1 if there is one."""
    import subprocess

    from pipeline.core import params
    from pipeline.core.errors import BouldersegError
    from pipeline.views.verify import stages_to_rerun, verify as check

    p = params.load(params_file)
    problems = check(p, keys)
    for problem in problems:
        typer.echo(str(problem))
    if problems and fix:
        stages = stages_to_rerun(problems)  # upstream first: --single-item runs them in the order given
        typer.echo(f"rerunning {', '.join(stages)}")
        if subprocess.run(["dvc", "repro", "--force", "--single-item", *stages]).returncode:
            raise BouldersegError(f"`dvc repro` of {', '.join(stages)} failed (its message is above).")
        problems = check(p, keys)
        for problem in problems:
            typer.echo(f"still: {problem}")
    if problems:
        raise BouldersegError(f"{len(problems)} problem(s); `boulderseg verify --fix"
                              f"{' ' + ' '.join(keys) if keys else ''}` reruns {', '.join(stages_to_rerun(problems))}.")
    typer.echo(f"verified {len(keys or [*p.videos, *p.unannotated])} video(s): every artifact agrees with the others, "
               "its record and dvc.lock.")


def predict(
    video: Annotated[Path | None, typer.Argument(help="The video to segment.", dir_okay=False)] = None,
    model: Annotated[Path, typer.Option(help="A model bundle directory: models/<backbone>/<head>.")] = ...,
    out: Annotated[Path | None, typer.Option(help="Where to write the segmentation (created).")] = None,
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
        raise BouldersegError("give either a VIDEO (and --out) or --all-unannotated.")
    if all_unannotated:
        p = params.load(params_file)
        if not p.unannotated:
            raise BouldersegError(f"{params_file}: the unannotated table is empty; `boulderseg add VIDEO` adds one.")
        for key, v in p.unannotated.items():
            result = segment_unannotated(key, Path(v.video), model)
            typer.echo(f"{UNANNOTATED / 'predicted' / key}: {len(result.segments)} phases, "
                       f"{result.report['attempts']} attempt(s); review segments.xlsx, then `boulderseg add` it")
        return
    if out is None:
        raise BouldersegError("--out DIR is needed: where to write the segmentation.")
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
