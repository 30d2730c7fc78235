"""Saving a reviewed segmentation: the sheet in the annotators' layout and words (as `predict` writes
segments.xlsx), checked by reading it back through the labels stage's own code before it replaces anything.

The sheet goes to data/raw/annotations/<key>.reviewed.xlsx, beside the raw files `boulderseg add` places; the
version it replaces is kept as <key>.reviewed.previous.xlsx. An annotated video's entry in params.yaml is pointed
at it (comments kept), so the next `dvc repro` relabels and retrains; an unannotated one can then be added.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.annotations.catalog import RAW, add_video
from pipeline.annotations.segments import LabelPolicy
from pipeline.annotations.videotable import VideoEntry, label_video
from pipeline.core import params, paramsedit
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError
from pipeline.review.data import registered, reviewed_sheet
from pipeline.views.phases import annotator_words, segments_table, write_segments



@contextmanager
def _saving(root: Path) -> Iterator[None]:
    """One save or add at a time in this project, across threads and processes (two servers): the previous
    version, the sheet and params.yaml move together."""
    folder = root / ".dvc" / "tmp"  # DVC's own scratch folder: nothing git or DVC tracks
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "boulderseg-review.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class Saved:
    sheet: Path  # relative to the project
    counts: dict[str, int]  # label -> frames, as the labels stage reads the sheet


def frame_labels_of(segments: Sequence[dict], *, n_frames: int, fps: float, classes: Sequence[str],
                    default: str) -> list[str]:
    """Per-frame labels of `[{"label", "start", "end"}]` (seconds): frame i shows the segment holding i / fps;
    frames no segment holds get `default`. Unknown labels, reversed or overlapping segments are refused."""
    labels = [default] * n_frames
    for i, s in enumerate(segments):
        times = [s.get(k) for k in ("start", "end")]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) for t in times):
            raise BouldersegError(f"segment {i + 1}: start and end must be numbers of seconds, not {times}.")
    spans = sorted(segments, key=lambda s: s["start"])
    for i, s in enumerate(spans):
        if s.get("label") not in classes:
            raise BouldersegError(f"segment {i + 1}: label {s.get('label')!r} is not one of {', '.join(classes)}.")
        start, end = float(s["start"]), float(s["end"])
        if not 0 <= start < end:
            raise BouldersegError(f"segment {i + 1}: start {start:g} s and end {end:g} s are not a span.")
        if i and start < float(spans[i - 1]["end"]) - 1e-6:
            raise BouldersegError(f"segment {i + 1} starts at {start:g} s, before the one before it ends.")
        first, last = round(start * fps), min(round(end * fps), n_frames)
        labels[first:last] = [s["label"]] * max(last - first, 0)
    return labels


def save(root: Path, params_file: Path, key: str, segments: Sequence[dict]) -> Saved:
    """Write `segments` of video `key` as its reviewed sheet, if the labels stage reads back exactly those labels."""
    with _saving(root):
        p = params.load(root / params_file)
        registered(p, key)
        manifest = json.loads((root / "data/frames" / key / "manifest.json").read_text())
        fps, n_frames = float(manifest["fps"]), int(manifest["frames"])
        labels = frame_labels_of(segments, n_frames=n_frames, fps=fps, classes=list(p.labels.classes),
                                 default=p.labels.default)
        words = annotator_words(dict(p.labels.map), list(p.labels.classes))
        table = segments_table(labels, fps=fps, duration=manifest["duration_s"], words=words)
        v = p.videos.get(key) or p.unannotated[key]
        sheet = reviewed_sheet(key)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.review-", dir=root / sheet.parent))
        try:
            write_segments(table, staging)
            policy = LabelPolicy.from_params(p.labels, fps=fps)
            entry = VideoEntry(key, v.climb or key, root / v.video, staging / "segments.xlsx")
            read = label_video(entry, policy, fps=fps).labels
            if read != labels:
                differ = sum(a != b for a, b in zip(read, labels)) + abs(len(read) - len(labels))
                raise BouldersegError(f"the sheet would read back with {differ} frame(s) labelled otherwise than "
                                      "shown; nothing was saved.")
            existed = (root / sheet).exists()
            _keep_previous(root / sheet)
            os.replace(staging / "segments.xlsx", root / sheet)
            if key in p.videos and p.videos[key].annotation != sheet.as_posix():  # it reads the reviewed sheet
                try:
                    _point_at(root / params_file, key, sheet)
                except BaseException:  # params.yaml stays as it was: so does the sheet it may name
                    _restore_previous(root / sheet, existed)
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Saved(sheet, dict(Counter(read)))


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
        added = add_video(Path(v.video), sheet, climb=climb or v.climb, view=v.view, key=key, copy=False,
                          params_file=root / params_file)
        return added.labelled


def _restore_previous(sheet: Path, existed: bool) -> None:
    if existed:
        os.replace(_previous(sheet), sheet)
    else:
        sheet.unlink(missing_ok=True)


def _previous(sheet: Path) -> Path:
    return sheet.with_name(sheet.name.removesuffix(".xlsx") + ".previous.xlsx")


def _keep_previous(sheet: Path) -> None:
    if sheet.exists():
        with atomic_output(_previous(sheet)) as tmp:
            tmp.write_bytes(sheet.read_bytes())
