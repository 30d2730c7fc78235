"""Annotators' rows (label, start, duration or end) -> segments -> exact per-frame labels.

Frame i is the instant i / fps. It takes the label of the segment whose [start, end) holds that
instant, so a segment covers frames ceil(start * fps) .. ceil(end * fps) - 1. Sheets store times
to the millisecond at best (and start + duration adds two roundings), so a boundary up to
TIME_TOL after a frame's instant counts as on it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pipeline.annotations.sheets import Table, read_table
from pipeline.annotations.text import is_blank, normalize
from pipeline.annotations.timeparse import TimeFormatError, to_seconds, unit_from_header
from pipeline.core import params
from pipeline.core.errors import BouldersegError, summarize

TIME_TOL = 0.001  # seconds
HEADER_ALIASES = {
    "label": ("label", "action", "activite", "classe", "class", "activity"),
    "start": ("start", "debut", "start time", "temps debut", "begin", "onset", "starting"),
    "duration": ("duration", "duree", "length"),
    "end": ("end", "fin", "end time", "temps fin", "stop", "offset", "ending"),
}


@dataclass(frozen=True)
class Segment:
    label: str  # canonical class, after labels.merge
    start: float  # seconds of video time
    end: float  # seconds, exclusive
    row: int  # spreadsheet row (1 = header) it came from


@dataclass(frozen=True)
class LabelPolicy:
    """The `labels` section of params.yaml: how raw sheets become classes."""

    classes: tuple[str, ...]
    default: str = "nothing"  # frames no segment covers
    label_map: Mapping[str, str] = field(default_factory=dict)  # raw label -> class
    merge: Mapping[str, str] = field(default_factory=dict)  # class -> the class it is merged into
    drop: tuple[str, ...] = ()  # classes kept in the label files but never trained on or scored
    overlap: str = "later_wins"  # later_wins | priority | error
    priority: tuple[str, ...] = ()  # for overlap=priority: first wins
    time_unit: str = "auto"  # numbers in time columns: auto | s | ms | frames
    annotation_fps: float | None = None  # fps of frame-number times
    columns: Mapping[str, str | None] = field(default_factory=dict)  # role -> explicit header

    @classmethod
    def from_params(cls, cfg: params.Labels, *, fps: float) -> LabelPolicy:
        policy = cls(
            classes=tuple(cfg.classes), default=cfg.default, label_map=cfg.map, merge=cfg.merge, drop=tuple(cfg.drop),
            overlap=cfg.overlap, priority=tuple(cfg.priority), time_unit=cfg.time_unit,
            annotation_fps=cfg.annotation_fps or fps,
            columns={role: header for role, header in cfg.columns.model_dump().items() if header})
        policy.check()
        return policy

    def check(self) -> None:
        """Every class the policy names must be a class (types and choices are checked by pipeline.core.params)."""
        problems = [f"labels.{key}: '{c}' is not in labels.classes" for key, names in (
            ("default", [self.default]), ("map", self.label_map.values()), ("merge", [*self.merge, *self.merge.values()]),
            ("drop", self.drop), ("priority", self.priority)) for c in names if c not in self.classes]
        problems += [f"labels.merge: '{c}' is merged into '{self.merge[c]}', which is itself merged"
                     for c in self.merge if self.merge[c] in self.merge]
        if problems:
            raise BouldersegError(f"params.yaml: {len(problems)} problem(s):\n  " + "\n  ".join(problems)
                                  + f"\n  Classes: {', '.join(self.classes)}.")

    @cached_property
    def _lookup(self) -> dict[str, str]:
        return {normalize(c): c for c in self.classes} | {normalize(k): v for k, v in self.label_map.items()}

    def canonical(self, raw: object) -> str | None:
        """The class of a raw label (map, then merge), or None when unknown."""
        label = self._lookup.get(normalize(raw))
        return self.merge.get(label, label) if label is not None else None

    @property
    def known_labels(self) -> list[str]:
        return sorted({normalize(c) for c in (*self.classes, *self.label_map)})

    @property
    def model_classes(self) -> list[str]:
        """The classes a head predicts: labels.classes without dropped or merged-away ones."""
        return [c for c in self.classes if c not in self.drop and c not in self.merge]


def header_key(header: object) -> str:
    """'Début (ms)' -> 'debut', 'start_frame' -> 'start': the header without its unit."""
    words = re.findall(r"[a-z]+", normalize(re.sub(r"\(.*?\)", " ", str(header))))
    while len(words) > 1 and unit_from_header(words[-1]):
        words.pop()
    return " ".join(words)


def find_columns(table: Table, columns: Mapping[str, str | None]) -> dict[str, str]:
    """Role (label, start, duration, end) -> header: from labels.columns, else by the aliases."""
    headers = [c for c in table.rows.columns if c != table.video_column]
    by_key = {header_key(c): c for c in headers}
    found, problems = {}, []
    for role, aliases in HEADER_ALIASES.items():
        explicit = columns.get(role)
        if explicit:
            match = next((c for c in headers if normalize(c) == normalize(explicit)), None)
            if match is None:
                problems.append(f"column '{explicit}' (labels.columns.{role}) not found")
        else:
            match = next((by_key[a] for a in aliases if a in by_key), None)
        if match is not None:
            found[role] = match
    missing = [r for r in ("label", "start") if r not in found]
    if "duration" not in found and "end" not in found:
        missing.append("duration or end")
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if problems:
        raise BouldersegError(
            f"{table.where}: {'; '.join(problems)}; found {[str(c) for c in table.rows.columns]}. Expected headers "
            "like label/action, start/début, duration/durée or end/fin, or set them under labels.columns in params.yaml.")
    return found


def _unit(header: object, time_unit: str) -> str:
    if time_unit != "auto":
        return time_unit
    return unit_from_header(str(header)) or "s"


def table_segments(table: Table, policy: LabelPolicy, *, offset: float = 0.0) -> list[Segment]:
    """Segments of a table's rows in video time (sheet time + `offset`), all problems reported at once."""
    cols = find_columns(table, policy.columns)
    stop_role = "end" if "end" in cols else "duration"
    problems, segments = [], []
    for row, rec in table.rows.iterrows():
        raw = rec[cols["label"]]
        label = None if is_blank(raw) else policy.canonical(raw)
        if is_blank(raw):
            problems.append(_blank(table, row, cols["label"], "empty label"))
        elif label is None:
            problems.append(f"row {row}, column '{cols['label']}': unknown label '{raw}'. Known: "
                            f"{', '.join(policy.known_labels)}. Add it under labels.map in params.yaml.")
        times = []
        for role in ("start", stop_role):
            col = cols[role]
            if is_blank(rec[col]):
                problems.append(_blank(table, row, col, "empty cell"))
                continue
            try:
                t = to_seconds(rec[col], unit=_unit(col, policy.time_unit), fps=policy.annotation_fps)
            except TimeFormatError as e:
                problems.append(f"row {row}, column '{col}': {e}")
                continue
            if t < 0:
                problems.append(f"row {row}, column '{col}': negative time {t:g} s; expected a time from the video's start")
            times.append(t)
        if len(times) < 2:
            continue
        start, stop = times
        end = stop if stop_role == "end" else start + stop
        if end <= start:
            what = f"ends at {end:g} s, not after its start {start:g} s" if stop_role == "end" else f"duration {stop:g} s"
            problems.append(f"row {row}, column '{cols[stop_role]}': {what}; expected a positive duration")
        elif label is not None:
            segments.append(Segment(label, start + offset, end + offset, int(row)))
    if problems:
        raise BouldersegError(f"{table.where}: {len(problems)} problem(s):\n  "
                              + "\n  ".join(summarize(problems, limit=20, what="problem")))
    return segments


def _blank(table: Table, row: int, column: str, what: str) -> str:
    """An empty cell, or a formula saved without its computed value (which reads as empty)."""
    formula = table.formulas.get((row, column))
    if formula is None:
        return f"row {row}, column '{column}': {what}"
    return (f"row {row}, column '{column}': formula '={formula}' has no computed value (the file was saved by a "
            "program that does not calculate formulas); open and save it in a spreadsheet program, or paste values")


def read_segments(path: str | Path, policy: LabelPolicy, *, names: Sequence[str] = (), sheet: str | None = None,
                  offset: float = 0.0) -> tuple[list[Segment], str]:
    """(segments, where) of one video's annotation: `names` find its sheet or rows (see pipeline.annotations.sheets)."""
    names = list(names) or [Path(path).stem]
    table = read_table(path, names=names, sheet=sheet, video_column=policy.columns.get("video"))
    return table_segments(table, policy, offset=offset), table.where


def frame_index_at(time: float, fps: float) -> int:
    """First frame whose instant i / fps is at or after `time` (within TIME_TOL)."""
    return max(0, math.ceil(time * fps - min(TIME_TOL * fps, 0.49)))


def clip_to_video(segments: Sequence[Segment], *, duration: float, where: str) -> tuple[list[Segment], list[str]]:
    """Segments cut to [0, duration), and a warning naming each one that was cut or lay outside."""
    kept, warnings = [], []
    for s in segments:
        span = f"{where}, row {s.row}: segment '{s.label}' {s.start:g}-{s.end:g} s"
        if s.start >= duration - TIME_TOL or s.end <= TIME_TOL:
            warnings.append(f"{span} lies outside the video (0-{duration:g} s); ignored")
            continue
        if s.end > duration + TIME_TOL or s.start < -TIME_TOL:
            warnings.append(f"{span} runs past the video (0-{duration:g} s); clipped")
        kept.append(Segment(s.label, max(s.start, 0.0), min(s.end, duration), s.row))
    return kept, warnings


def frame_labels(segments: Sequence[Segment], *, n_frames: int, fps: float, policy: LabelPolicy,
                 where: str = "annotation") -> list[str]:
    """One label per frame; frames no segment covers get `policy.default`.

    Overlaps follow `policy.overlap`: later_wins (segments are laid down in start order, ties in row
    order, each over the earlier ones), priority (the class first in `policy.priority` wins, then
    later_wins) or error (any two segments sharing a frame are reported).
    """
    spans = [(s, min(frame_index_at(s.start, fps), n_frames), min(frame_index_at(s.end, fps), n_frames))
             for s in segments]
    spans = [sp for sp in spans if sp[2] > sp[1]]
    spans.sort(key=lambda sp: (sp[0].start, sp[0].row))
    if policy.overlap == "error":
        _raise_on_overlaps(spans, fps, where)
    if policy.overlap == "priority":
        rank = {c: i for i, c in enumerate(policy.priority)}
        spans.sort(key=lambda sp: -rank.get(sp[0].label, len(rank)))  # stable: equal ranks keep start order
    labels = [policy.default] * n_frames
    for seg, lo, hi in spans:
        labels[lo:hi] = [seg.label] * (hi - lo)
    return labels


def _raise_on_overlaps(spans: list, fps: float, where: str) -> None:
    problems, reach = [], None  # reach: the span ending last so far
    for span in spans:
        if reach is not None and span[1] < reach[2]:
            lo, hi = span[1], min(span[2], reach[2])
            problems.append(f"rows {reach[0].row} and {span[0].row} overlap on frames {lo}-{hi - 1} "
                            f"({lo / fps:g}-{hi / fps:g} s)")
        if reach is None or span[2] > reach[2]:
            reach = span
    if problems:
        raise BouldersegError(f"{where}: {len(problems)} overlap(s) and labels.overlap is 'error':\n  "
                              + "\n  ".join(problems) + "\n  Fix the sheet, or set labels.overlap to later_wins "
                              "or priority in params.yaml.")
