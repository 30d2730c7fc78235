"""Saving a reviewed segmentation: the sheet in the annotators' layout and words (as `predict` writes
segments.xlsx), checked by reading it back through the labels stage's own code before it replaces anything.

The sheet goes to data/raw/annotations/<key>.reviewed.xlsx, beside the raw files `boulderseg add` places, and every
version saved is kept in data/raw/annotations/history/<key>/<UTC time>-<version>.xlsx (copy one back over the
reviewed sheet to return to it). A save names the version it was made on: one made on an older version is refused
(`Stale`), so two pages on one video never overwrite each other unseen. An annotated video's entry in params.yaml
is pointed at the reviewed sheet (comments kept), so the next `dvc repro` relabels and retrains; an unannotated
one can then be added.
"""
from __future__ import annotations

import fcntl
import hashlib
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.annotations.catalog import RAW, add_video
from pipeline.core import params, paramsedit
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError
from pipeline.review.data import registered, reviewed_sheet, sheet_labels
from pipeline.views import look
from pipeline.views.phases import annotator_words, segments_table, write_segments

HISTORY = RAW / "annotations" / "history"
SCRATCH = Path(".dvc/tmp/boulderseg-review")  # DVC's own scratch folder: nothing git or DVC tracks


class Stale(BouldersegError):
    """A save made on a version of the sheet that is no longer the saved one."""

    def __init__(self, key: str, current: str | None) -> None:
        super().__init__(f"{key} was saved from another page since this one opened it: reload to see that version, "
                         "or overwrite it with yours (every version stays in its history).")
        self.current = current


def tidy(root: Path) -> None:
    """Remove what killed saves left in the staging folder (or, from an older version, beside the sheets)."""
    with _locked(root):
        _tidy(root)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One save or add at a time in this project, across threads and processes (two servers)."""
    (root / SCRATCH).mkdir(parents=True, exist_ok=True)
    with open(root / SCRATCH.parent / "boulderseg-review.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _tidy(root: Path) -> None:
    for left in [*(root / SCRATCH).iterdir(), *(root / RAW / "annotations").glob(".*.review-*")]:
        if left.is_dir():
            shutil.rmtree(left, ignore_errors=True)
        else:
            left.unlink(missing_ok=True)


@contextmanager
def _saving(root: Path) -> Iterator[Path]:
    """Under the project's save lock (the history, the sheet and params.yaml move together), an empty staging
    folder; what a killed save left there goes first."""
    with _locked(root):
        _tidy(root)
        staging = Path(tempfile.mkdtemp(dir=root / SCRATCH))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class Saved:
    sheet: Path  # relative to the project
    counts: dict[str, int]  # label -> frames, as the labels stage reads the sheet
    seconds: dict[str, float]  # label -> seconds
    version: str  # what the next save names as its base
    kept: Path  # this version in the history, relative to the project
    replaced: Path | None  # the version it replaced, in the history; None when it replaced none


def version(sheet: Path) -> str | None:
    """A sheet's version: the first 16 hex digits of its SHA-256; None when there is no sheet."""
    return hashlib.sha256(sheet.read_bytes()).hexdigest()[:16] if sheet.is_file() else None


def frame_labels_of(segments: Sequence[dict], *, n_frames: int, fps: float, duration: float, classes: Sequence[str],
                    default: str) -> list[str]:
    """Per-frame labels of `[{"label", "start", "end"}]` (seconds, within the video's `duration`): frame i shows the
    segment with start <= i / fps < end; frames no segment holds get `default`. No segment, unknown labels,
    times outside the video, reversed or overlapping segments are refused."""
    if not segments:
        raise BouldersegError("no segments: a reviewed sheet holds at least one phase.")
    limit = max(duration, n_frames / fps)
    for i, s in enumerate(segments):
        times = [s.get(k) for k in ("start", "end")]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) for t in times):
            raise BouldersegError(f"segment {i + 1}: start and end must be numbers of seconds, not {times}.")
        if not 0 <= times[0] < times[1] <= limit + 1e-6:
            raise BouldersegError(f"segment {i + 1}: {times[0]:g} s to {times[1]:g} s is not a span within the "
                                  f"video (0 to {limit:g} s).")
        if s.get("label") not in classes:
            raise BouldersegError(f"segment {i + 1}: label {s.get('label')!r} is not one of {', '.join(classes)}.")
    labels = [default] * n_frames
    spans = sorted(segments, key=lambda s: s["start"])
    for i, s in enumerate(spans):
        if i and s["start"] < spans[i - 1]["end"] - 1e-6:
            raise BouldersegError(f"the segment starting at {s['start']:g} s starts before the one before it ends "
                                  f"({spans[i - 1]['end']:g} s).")
        first, last = (min(math.ceil(t * fps - 1e-6), n_frames) for t in (s["start"], s["end"]))
        labels[first:last] = [s["label"]] * (last - first)
    return labels


def save(root: Path, params_file: Path, key: str, segments: Sequence[dict], *, base: str | None) -> Saved:
    """Write `segments` of video `key` as its reviewed sheet, if `base` is the version saved now and the labels
    stage reads back exactly those labels."""
    with _saving(root) as staging:
        p = params.load(root / params_file)
        registered(p, key)
        sheet = reviewed_sheet(key)
        if (current := version(root / sheet)) != base:
            raise Stale(key, current)
        if (manifest := look.manifest(root, key)) is None:
            raise BouldersegError(f"{key} has no frames yet: run `dvc repro` first, then review it.")
        fps, n_frames = float(manifest["fps"]), int(manifest["frames"])
        labels = frame_labels_of(segments, n_frames=n_frames, fps=fps, duration=float(manifest["duration_s"]),
                                 classes=list(p.labels.classes), default=p.labels.default)
        repoint = key in p.videos and p.videos[key].annotation != sheet.as_posix()  # to read the reviewed sheet
        if current and not repoint and _reads(p, key, root / sheet, manifest, root) == labels:  # `s` twice
            return _saved(root, key, labels, fps, current)
        words = annotator_words(dict(p.labels.map), list(p.labels.classes))
        write_segments(segments_table(labels, fps=fps, duration=manifest["duration_s"], words=words), staging)
        read = sheet_labels(p, key, staging / "segments.xlsx", manifest, root)
        if read != labels:
            differ = sum(a != b for a, b in zip(read, labels)) + abs(len(read) - len(labels))
            raise BouldersegError(f"the sheet would read back with {differ} frame(s) labelled otherwise than "
                                  "shown; nothing was saved.")
        before = (root / sheet).read_bytes() if current else None
        replaced = _keep(root, key, before, current).relative_to(root) if current else None
        kept = _keep(root, key, (staging / "segments.xlsx").read_bytes(), version(staging / "segments.xlsx"))
        os.replace(staging / "segments.xlsx", root / sheet)
        if repoint:
            try:
                _point_at(root / params_file, key, sheet)
            except BaseException:  # params.yaml stays as it was: so does the sheet it may name
                _put_back(root / sheet, before)
                raise
        return _saved(root, key, read, fps, version(root / sheet), kept, replaced)


def _reads(p: params.Params, key: str, sheet: Path, manifest: dict, root: Path) -> list[str] | None:
    try:
        return sheet_labels(p, key, sheet, manifest, root)
    except BouldersegError:  # edited by hand into something the labels stage refuses: a save replaces it
        return None


def _saved(root: Path, key: str, labels: list[str], fps: float, ver: str, kept: Path | None = None,
           replaced: Path | None = None) -> Saved:
    kept = kept or _keep(root, key, (root / reviewed_sheet(key)).read_bytes(), ver)
    counts = Counter(labels)
    return Saved(reviewed_sheet(key), dict(counts), {c: round(k / fps, 2) for c, k in counts.items()}, ver,
                 kept.relative_to(root), replaced)


def _keep(root: Path, key: str, sheet: bytes, ver: str) -> Path:
    """`sheet` in the video's history, unless that version is there already; its path there."""
    folder = root / HISTORY / key
    folder.mkdir(parents=True, exist_ok=True)
    if found := sorted(folder.glob(f"*-{ver}.xlsx")):
        return found[-1]
    path = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{ver}.xlsx"
    with atomic_output(path) as tmp:
        tmp.write_bytes(sheet)
    return path


def _put_back(sheet: Path, before: bytes | None) -> None:
    if before is None:
        sheet.unlink(missing_ok=True)
    else:
        with atomic_output(sheet) as tmp:
            tmp.write_bytes(before)


def _point_at(params_file: Path, key: str, sheet: Path) -> None:
    """videos.<key> reads `sheet` (comments kept; a key may hold dots, so no dotted paths)."""
    data = paramsedit.read(params_file)
    entry = data["videos"][key]
    entry["annotation"] = sheet.as_posix()
    for name in ("sheet", "offset"):
        entry.pop(name, None)
    paramsedit.write(params_file, data)


def add_to_dataset(root: Path, params_file: Path, key: str, *, climb: str | None) -> str:
    """An unannotated video whose reviewed sheet was saved, moved to the `videos` table with that sheet as its
    annotation: `boulderseg add`'s path and checks. Returns what `add` says of it."""
    with _saving(root):
        p = params.load(root / params_file)
        registered(p, key)
        if key in p.videos:
            raise BouldersegError(f"{key} is annotated already: its saved sheet is its annotation.")
        sheet = reviewed_sheet(key)
        if not (root / sheet).is_file():
            raise BouldersegError(f"save {key}'s phases first: {sheet} does not exist yet.")
        v = p.unannotated[key]  # paths as params.yaml holds them, relative to the project: the server's directory
        if not (climb or v.climb):
            raise BouldersegError(f"nothing was added: say which climb {key} shows (the videos of one climb are "
                                  "kept together when the model is trained and scored).")
        added = add_video(Path(v.video), sheet, climb=climb or v.climb, view=v.view, key=key, copy=False,
                          params_file=root / params_file)
        return added.labelled
