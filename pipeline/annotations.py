"""Annotators' sheets (one row per segment: label, start, duration or end) -> per-frame labels."""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import BouldersegError
from pipeline.timeparse import TimeFormatError, to_seconds, unit_from_header

# A boundary within this fraction of a frame of a frame's timestamp counts as on it
# (spreadsheets store 2.4 s as 2.3999999999999999).
FRAME_EPS = 1e-6

HEADER_ALIASES = {
    "label": ("label", "action", "activite", "classe", "class"),
    "start": ("start", "debut", "start time", "temps debut"),
    "duration": ("duration", "duree"),
    "end": ("end", "fin", "end time", "temps fin"),
}


@dataclass(frozen=True)
class Segment:
    label: str  # canonical class
    start: float  # seconds
    end: float  # seconds, exclusive
    row: int  # spreadsheet row (1 = header) it came from


def normalize(text: str) -> str:
    """Case-, accent- and spacing-insensitive key: ' Début ' -> 'debut'."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\s_]+", " ", text).strip().lower()


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BouldersegError(f"{path}: annotation file not found.")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=object)
        return pd.read_excel(path, sheet_name=0, engine="calamine", dtype=object)
    except Exception as e:  # noqa: BLE001 - any reader failure is the same user problem
        raise BouldersegError(
            f"{path}: cannot read the annotation sheet ({e}). Save it as .xlsx or .csv."
        ) from e


def header_key(header: object) -> str:
    """'Début (ms)' -> 'debut', 'start_frame' -> 'start': the header without its unit."""
    words = re.findall(r"[a-z]+", normalize(re.sub(r"\(.*?\)", " ", str(header))))
    while len(words) > 1 and unit_from_header(words[-1]):
        words.pop()
    return " ".join(words)


def _find_columns(df: pd.DataFrame, path: Path) -> dict[str, str]:
    by_key = {header_key(c): c for c in df.columns}
    found = {}
    for role, aliases in HEADER_ALIASES.items():
        match = next((by_key[a] for a in aliases if a in by_key), None)
        if match is not None:
            found[role] = match
    missing = [r for r in ("label", "start") if r not in found]
    if "duration" not in found and "end" not in found:
        missing.append("duration or end")
    if missing:
        raise BouldersegError(
            f"{path}: missing column(s) {', '.join(missing)}; found {list(df.columns)}. "
            "Expected headers like label/action, start/début, duration/durée or end/fin."
        )
    return found


def _unit(header: str, time_unit: str) -> str:
    """The unit numbers in this column are in: params' labels.time_unit, or the header's hint."""
    if time_unit != "auto":
        return time_unit
    return unit_from_header(header) or "s"


def read_segments(
    path: str | Path,
    *,
    label_map: Mapping[str, str],
    classes: Sequence[str],
    time_unit: str = "auto",
    fps: float | None = None,
) -> list[Segment]:
    """Segments of one annotation sheet, labels mapped to canonical classes.

    Numbers are read in `time_unit` (auto: the header's hint, e.g. 'Début (ms)', else seconds);
    frame numbers need `fps`. Every problem in the sheet is reported at once, each with its
    row and column.
    """
    path = Path(path)
    df = _read_table(path)
    cols = _find_columns(df, path)
    lookup = {normalize(k): v for k, v in label_map.items()} | {normalize(c): c for c in classes}
    start_col, stop_col = cols["start"], cols.get("end") or cols["duration"]
    problems, segments = [], []
    for i, rec in enumerate(df.to_dict("records")):
        row = i + 2  # 1-based, after the header row
        raw_label = rec[cols["label"]]
        label = None
        if raw_label is None or (isinstance(raw_label, float) and math.isnan(raw_label)):
            problems.append(f"row {row}, column '{cols['label']}': empty label")
        else:
            label = lookup.get(normalize(raw_label))
            if label is None:
                problems.append(
                    f"row {row}, column '{cols['label']}': unknown label '{raw_label}'. "
                    f"Known: {', '.join(sorted(lookup))}. Add it under labels.map in params.yaml."
                )
        times = []
        for col in (start_col, stop_col):
            try:
                times.append(to_seconds(rec[col], unit=_unit(str(col), time_unit), fps=fps))
            except TimeFormatError as e:
                problems.append(f"row {row}, column '{col}': {e}")
        if len(times) < 2:
            continue
        start, stop = times
        end = stop if "end" in cols else start + stop
        if end <= start:
            problems.append(f"row {row}: segment ends at {end}s, not after its start {start}s")
        elif label is not None:
            segments.append(Segment(label, start, end, row))
    if problems:
        raise BouldersegError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return segments


def frame_index_at(time: float, fps: float) -> int:
    """First frame whose timestamp i/fps is at or after `time`."""
    return max(0, math.ceil(time * fps - FRAME_EPS))


def frame_labels(
    segments: Sequence[Segment], *, n_frames: int, fps: float, default: str
) -> list[str]:
    """Frame i (at i/fps) takes the label of the segment whose [start, end) holds it.

    Where segments overlap, the later row wins; frames no segment covers get `default`.
    """
    labels = [default] * n_frames
    for seg in segments:
        lo = min(frame_index_at(seg.start, fps), n_frames)
        hi = min(frame_index_at(seg.end, fps), n_frames)
        labels[lo:hi] = [seg.label] * (hi - lo)
    return labels
