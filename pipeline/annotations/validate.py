"""Check every annotation against its video and the videos table, without running the pipeline."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.annotations.segments import LabelPolicy, find_columns
from pipeline.annotations.sheets import ANNOTATION_SUFFIXES, Table, find_video_column, pick_sheet, read_sheets
from pipeline.annotations.text import VIDEO_SUFFIXES, is_blank, video_key
from pipeline.annotations.videotable import VideoEntry, entries, label_video
from pipeline.core import params
from pipeline.core.errors import BouldersegError


@dataclass
class Report:
    summaries: list[str] = field(default_factory=list)  # one line per video that labels cleanly
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def validate(p: params.Params) -> Report:
    """Read every video's annotation as the `labels` stage would, and cross-check files and the table."""
    report = Report()
    fps = p.data.fps
    try:
        policy = LabelPolicy.from_params(p.labels, fps=fps)
    except BouldersegError as e:
        report.problems.append(str(e))
        return report
    videos = entries(p.videos)
    for e in videos.values():
        if not e.video.is_file():
            report.problems.append(f"videos.{e.key}: annotation without video: {e.video} not found. "
                                   "Put the video there or remove the entry.")
        if not e.annotation.is_file():
            report.problems.append(f"videos.{e.key}: video without annotation: {e.annotation} not found. "
                                   "Annotate the video or remove the entry.")
        if not (e.video.is_file() and e.annotation.is_file()):
            continue
        try:
            result = label_video(e, policy, fps=fps)
        except BouldersegError as err:
            report.problems.append(str(err))
            continue
        report.warnings += result.warnings
        report.summaries.append(f"{e.key}: {len(result.labels)} frames, {len(result.segments)} segments "
                                f"from {result.where}")
    report.problems += _unreferenced_files(videos.values(), [v.video for v in p.unannotated.values()])
    report.problems += [f"unannotated.{k}: {v.video} not found. Put the video there or remove the entry."
                        for k, v in p.unannotated.items() if not Path(v.video).is_file()]
    report.problems += _unclaimed_sheets_and_rows(videos.values(), policy.columns)
    return report


def _unreferenced_files(videos, unannotated: Iterable[Path] = ()) -> list[str]:
    """Annotation and video files beside the table's files that no entry uses (videos listed as unannotated count)."""
    problems = []
    for attr, suffixes, what in (("annotation", ANNOTATION_SUFFIXES, "annotation without video"),
                                 ("video", VIDEO_SUFFIXES, "video without annotation")):
        used = {getattr(e, attr).resolve() for e in videos} | {Path(v).resolve() for v in unannotated}
        for folder in sorted({getattr(e, attr).parent for e in videos if getattr(e, attr).parent.is_dir()}):
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() in suffixes and f.resolve() not in used and not f.name.startswith("."):
                    problems.append(f"{f}: {what}: no entry of params.yaml videos or unannotated uses it. "
                                    f"Add an entry for it, or move it out of {folder}.")
    return problems


def _unclaimed_sheets_and_rows(videos, columns: Mapping) -> list[str]:
    """Sheets no video reads, and rows of a video column naming no video in the table."""
    by_file: dict[Path, list[VideoEntry]] = defaultdict(list)
    for e in videos:
        if e.annotation.is_file():
            by_file[e.annotation].append(e)
    problems = []
    for path, users in by_file.items():
        try:
            sheets = read_sheets(path)
            used = {pick_sheet(path, sheets, names=e.names, sheet=e.sheet) for e in users}
        except BouldersegError:
            continue  # already reported for the video that reads it
        for name, df in sheets.items():
            where = str(path) if name is None else f"{path}, sheet '{name}'"
            if name not in used:
                if _looks_like_annotations(df, where, columns):
                    problems.append(f"{where}: annotation without video: no video reads this sheet. Name it after "
                                    "a video, or set `sheet:` in that video's params entry.")
                continue
            column = find_video_column(df, where, explicit=columns.get("video"))
            if column is None:
                continue
            known = {video_key(n) for e in users for n in e.names}
            stray = defaultdict(list)
            for row, value in zip(range(2, len(df) + 2), df[column]):
                if not is_blank(value) and video_key(value) not in known:
                    stray[str(value)].append(row)
            problems += [f"{where}, column '{column}': annotation without video: rows {_rows(rows)} name video "
                         f"'{v}', which no entry of params.yaml videos reading this file is called. "
                         "Add the video to params.yaml or fix the name." for v, rows in stray.items()]
    return problems


def _looks_like_annotations(df, where: str, columns: Mapping) -> bool:
    """A sheet with rows under label and time headers (a notes or legend sheet is not one)."""
    try:
        find_columns(Table(rows=df, where=where, sheet=None, video_column=None), columns)
    except BouldersegError:
        return False
    return not df.empty


def _rows(rows: list[int]) -> str:
    return ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
