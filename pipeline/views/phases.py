"""A segmentation as a coach reads it: phases in the annotators' own words, and what they add up to."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_output
from pipeline.views.downloads import csv_text, xlsx_bytes


@dataclass(frozen=True)
class Phase:
    label: str  # a class name
    start: int  # first frame
    end: int  # one past the last frame


def phases(labels: Sequence[str]) -> list[Phase]:
    """Runs of equal labels, in order; together they cover every frame once."""
    labels = np.asarray(labels)
    if not len(labels):
        return []
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(labels)]
    return [Phase(str(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def annotator_words(label_map: Mapping[str, str], classes: Sequence[str]) -> dict[str, str]:
    """Class -> the first raw label of labels.map that means it (climbing -> grimpe); itself if none does."""
    words = {}
    for raw, cls in label_map.items():
        words.setdefault(cls, raw)
    return {c: words.get(c, c) for c in classes}


def clock(seconds: float) -> str:
    """mm:ss.ss, as annotators write times."""
    minutes, rest = divmod(round(seconds * 100), 6000)
    return f"{minutes:02d}:{rest / 100:05.2f}"


def segments_table(labels: Sequence[str], *, fps: float, duration: float, words: Mapping[str, str]) -> pd.DataFrame:
    """One row per phase: label (annotators' word), start and duration as mm:ss.ss and in seconds.

    Phases tile [0, duration]: each starts where the one before ends, the last ends at `duration`
    (the video's end, which may fall between two frame instants).
    """
    runs = phases(labels)
    starts = [r.start / fps for r in runs]
    ends = starts[1:] + [duration]
    return pd.DataFrame({
        "label": [words[r.label] for r in runs],
        "start": [clock(s) for s in starts],
        "duration": [clock(e - s) for s, e in zip(starts, ends)],
        "start (s)": np.round(starts, 3),
        "duration (s)": np.round(np.subtract(ends, starts), 3),
    })


def write_segments(table: pd.DataFrame, out_dir: Path, *, sheet: str = "annotations") -> None:
    """`segments.csv` and `segments.xlsx` (every cell a value, never a formula: times and words are text), each
    atomic."""
    with atomic_output(out_dir / "segments.csv") as tmp:
        tmp.write_text(csv_text(table))
    with atomic_output(out_dir / "segments.xlsx") as tmp:
        tmp.write_bytes(xlsx_bytes(table, sheet=sheet))


def with_nobody(labels: Sequence[str], person: Sequence[bool], default: str) -> np.ndarray:
    """`labels` with every frame the person filter removed (`person` false) as `default`: with nobody in frame
    there is no phase to see, whatever a head predicted there."""
    out = np.asarray(labels, dtype=object).copy()
    out[~np.asarray(person, dtype=bool)] = default
    return out.astype(str)


def report(labels: Sequence[str], person: Sequence[bool], *, fps: float, duration: float) -> dict:
    """Phase statistics in seconds: total and mean duration of each class, climbing attempts (climbing
    phases), time to the first attempt, reading time before each attempt, share of frames with nobody in it.
    Attempts are counted over the frames with someone in them: a climb the camera loses for a while (frames with
    nobody, `nothing`) is one attempt, not two."""
    runs = phases(labels)
    seconds = [(min(r.end / fps, duration) - r.start / fps) for r in runs]
    by_class: dict[str, list[float]] = {}
    for r, s in zip(runs, seconds):
        by_class.setdefault(r.label, []).append(s)
    labels = np.asarray(labels)
    seen = np.flatnonzero(np.asarray(person, dtype=bool) | (labels != "nothing")) if len(person) else \
        np.arange(len(labels))
    visible = phases(labels[seen])
    attempts = [i for i, r in enumerate(visible) if r.label == "climbing"]
    reading_before, last = [], 0
    for i in attempts:
        reading_before.append(round(sum(r.end - r.start for r in visible[last:i] if r.label == "reading") / fps, 3))
        last = i + 1
    return {
        "duration_s": round(duration, 3),
        "phases": {c: {"total_s": round(sum(v), 3), "mean_s": round(float(np.mean(v)), 3), "count": len(v)}
                   for c, v in by_class.items()},
        "attempts": len(attempts),
        "time_to_first_attempt_s": round(seen[visible[attempts[0]].start] / fps, 3) if attempts else None,
        "reading_before_attempt_s": reading_before,
        "nobody_in_frame_share": round(1 - float(np.mean(person)), 4) if len(person) else None,
    }
