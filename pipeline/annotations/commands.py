"""The dataset's commands: `add` and `remove` a video, `validate` every annotation, make the `sample`.
`pipeline/cli.py` declares them."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, EditedParamsOpt, ParamsOpt


def add(
    video: Annotated[Path, typer.Argument(help="The video file.")],
    annotation: Annotated[Path | None, typer.Argument(help="Its annotation (.xlsx/.xls/.ods/.csv); none: an unannotated video.")] = None,
    climb: Annotated[str | None, typer.Option(help="The climb it shows: views of one climb share a cross-validation fold. Needed with an annotation, unless the unannotated entry it annotates records it.")] = None,
    view: Annotated[str | None, typer.Option(help="face, profile, … (default: what the unannotated entry it annotates records).")] = None,
    key: Annotated[str | None, typer.Option(help="Its name in the videos table and under data/ (default: the file's stem).")] = None,
    offset: Annotated[float, typer.Option(help="Seconds added to every annotated time.")] = 0.0,
    sheet: Annotated[str | None, typer.Option(help="The workbook sheet holding its rows.")] = None,
    copy: Annotated[bool, typer.Option("--copy/--no-copy", help="Copy the files under data/raw/, or reference them in place.")] = True,
    params_file: EditedParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Add a video to the dataset: checked first (it decodes, its annotation labels it), nothing changed if not.

    Copies the files under data/raw/ and adds the entry to params.yaml, keeping the file's comments
    and order: under `videos` with an annotation, under `unannotated` without one (frames, persons
    and features only; `predict --all-unannotated` segments it). Annotating an unannotated video
    moves it, keeping the climb and view it records. Then prints what the next `dvc repro` runs.
    """
    from pipeline.annotations.catalog import add_video
    from pipeline.core import params

    known = params.load(params_file).unannotated.get(key or video.stem) if annotation is not None else None
    if known is not None:  # annotating a video listed as unannotated (`predict --all-unannotated`'s sheet, say)
        climb, view = climb or known.climb, view or known.view
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
    if added.tracked is not None:
        typer.echo(f"{added.tracked.with_suffix('')} is tracked by DVC, not git: `git add {added.tracked} "
                   f"{added.tracked.parent / '.gitignore'}`; `dvc push` sends the video to your remote.")


def remove(
    key: Annotated[str, typer.Argument(help="The video's key in the videos table.")],
    delete: Annotated[bool, typer.Option(help="Also delete its raw video and annotation (unless another entry uses them).")] = False,
    params_file: EditedParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Take a video out of the dataset (params.yaml's videos table, comments kept); `dvc repro` retrains without it."""
    from pipeline.annotations.catalog import remove_video

    table, entry = remove_video(key, params_file=params_file, delete=delete)
    typer.echo(f"removed {table}.{key} ({entry['video']}){'; its raw files deleted' if delete else ''}")


def validate(
    params_file: ParamsOpt = DEFAULT_PARAMS,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (videos ready, warnings, problems) instead of text.")] = False,
) -> None:
    """Check every annotation against its video and the videos table, without running the pipeline.

    Reports every problem at once (unknown labels, bad times, missing columns, empty sheets,
    annotations without a video and videos without an annotation) and exits 1 if there is one.
    """
    import json
    from dataclasses import asdict

    from pipeline.annotations.validate import validate as check
    from pipeline.core import params
    from pipeline.core.errors import BouldersegError, warn_all

    report = check(params.load(params_file))
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
    else:
        for line in report.summaries:
            typer.echo(f"ok  {line}")
        warn_all(report.warnings)
    if report.problems:
        raise BouldersegError(f"{len(report.problems)} problem(s) in the dataset:\n" + "\n".join(report.problems))
    if not as_json:
        typer.echo(f"{len(report.summaries)} videos ready, {len(report.warnings)} warning(s).")


def sample(
    root: Annotated[Path, typer.Argument(help="Where to write videos/ and annotations/.")] = Path("data/raw"),
    climbs: Annotated[int, typer.Option(help="Number of climbs (each has a face and a profile view).")] = 4,
    seconds: Annotated[float, typer.Option(help="Length of each video.")] = 10.0,
) -> None:
    """Generate the sample dataset and print its `videos:` table for params.yaml (needs the sample extra)."""
    import yaml

    from pipeline.annotations.sample import make_sample

    videos = make_sample(root, climbs=climbs, seconds=seconds)
    sys.stdout.write(yaml.safe_dump({"videos": videos}, sort_keys=False))
