"""Annotation files -> one table of rows for one video, whatever the file's layout.

A file is a .csv, or a workbook (.xlsx, .xlsm, .xls, .ods) read by calamine. A workbook holds
one video's rows, or one sheet per video (named after it), or one sheet with a column naming the
video of each row; `sheet` in the video's params entry picks a sheet explicitly.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from pipeline.annotations.text import is_blank, normalize, video_key
from pipeline.annotations.workbook import check_size, formulas_without_values
from pipeline.core.errors import BouldersegError

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
ANNOTATION_SUFFIXES = (".csv", *WORKBOOK_SUFFIXES)
VIDEO_COLUMN = ("video", "file", "fichier", "clip", "nom video", "video name")


@dataclass(frozen=True)
class Table:
    """Rows of one video's annotations; `rows.index` is the spreadsheet row (1 = header)."""

    rows: pd.DataFrame
    where: str  # "path" or "path, sheet 'name'": the prefix of every message about it
    sheet: str | None  # None for a .csv
    video_column: str | None  # the column naming each row's video, when the table has one
    path: Path | None = None  # the file, for a second look at its cells (see `formulas`)

    @cached_property
    def formulas(self) -> dict[tuple[int, str], str]:
        """(row, column) -> formula, of the cells saved without a computed value (they read as empty).
        Read on demand: only a blank cell needs it."""
        if self.path is None or self.sheet is None:
            return {}
        columns = list(self.rows.columns)
        return {(row, columns[col]): f for (row, col), f in formulas_without_values(self.path, self.sheet).items()
                if col < len(columns)}


def read_sheets(path: Path) -> dict[str | None, pd.DataFrame]:
    """Every sheet of a workbook by name, or {None: table} for a .csv; all cells as Python objects."""
    if not path.is_file():
        raise BouldersegError(f"{path}: annotation file not found. Check the `annotation` path in params.yaml videos.")
    suffix = path.suffix.lower()
    if suffix not in ANNOTATION_SUFFIXES:
        raise BouldersegError(f"{path}: unsupported annotation format '{suffix}'; use one of {', '.join(ANNOTATION_SUFFIXES)}.")
    check_size(path)
    try:
        if suffix == ".csv":
            return {None: pd.read_csv(path, dtype=object, sep=_csv_delimiter(path), skipinitialspace=True)}
        return pd.read_excel(path, sheet_name=None, engine="calamine", dtype=object)
    except Exception as e:  # noqa: BLE001 - any reader failure is the same user problem
        raise BouldersegError(f"{path}: cannot read the annotation file ({e}). Save it as .xlsx, .ods or .csv.") from e


def _csv_delimiter(path: Path) -> str:
    """';' or tab when the header uses it (French spreadsheets export 'Début;Durée' with '2,5'), else ','."""
    with path.open(encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return max((";", "\t", ","), key=header.count) if header.strip() else ","


def pick_sheet(path: Path, sheets: dict, *, names: Sequence[str], sheet: str | None) -> str | None:
    """The sheet holding this video: `sheet` if given, the only one, one named after the video, or the first."""
    if None in sheets:
        if sheet is not None:
            raise BouldersegError(f"{path}: a .csv has no sheets, but `sheet: {sheet}` is set in params.yaml videos.")
        return None
    if sheet is not None:
        if sheet not in sheets:
            raise BouldersegError(f"{path}: no sheet '{sheet}' (set in params.yaml videos); sheets: {list(sheets)}.")
        return sheet
    wanted = {video_key(n) for n in names}
    named = [s for s in sheets if video_key(s) in wanted]
    return named[0] if named else next(iter(sheets))


def read_table(path: str | Path, *, names: Sequence[str], sheet: str | None = None,
               video_column: str | None = None) -> Table:
    """The non-blank rows of `path` that belong to the video known by any of `names`.

    A workbook with several sheets and none named after the video must either give `sheet` or
    have a video column (found by header, or `video_column`) in its first sheet.
    """
    path = Path(path)
    sheets = read_sheets(path)
    name = pick_sheet(path, sheets, names=names, sheet=sheet)
    df = sheets[name]
    where = str(path) if name is None else f"{path}, sheet '{name}'"
    df.index = pd.RangeIndex(2, len(df) + 2)  # spreadsheet rows: the header is row 1
    df = df[[not all(is_blank(v) for v in rec) for rec in df.itertuples(index=False)]]
    column = find_video_column(df, where, explicit=video_column)
    if column is None and len(sheets) > 1 and sheet is None and video_key(name) not in {video_key(n) for n in names}:
        raise BouldersegError(
            f"{path}: {len(sheets)} sheets {list(sheets)}, none named after video '{names[0]}' and no video column "
            f"in sheet '{name}'. Name a sheet after the video, add a 'video' column, or set `sheet:` in its params entry.")
    if column is not None:
        df = _rows_of_video(df, column, names, where)
    if df.empty:
        raise BouldersegError(f"{where}: no annotation rows (the sheet is empty or has only a header). "
                              "Expected one row per segment: label, start, and duration or end.")
    return Table(rows=df, where=where, sheet=name, video_column=column, path=path)


def find_video_column(df: pd.DataFrame, where: str, *, explicit: str | None) -> str | None:
    if explicit is not None:
        match = [c for c in df.columns if normalize(c) == normalize(explicit)]
        if not match:
            raise BouldersegError(f"{where}: column '{explicit}' (labels.columns.video) not found; "
                                  f"found {list(df.columns)}.")
        return match[0]
    return next((c for c in df.columns if normalize(c) in VIDEO_COLUMN), None)


def _rows_of_video(df: pd.DataFrame, column: str, names: Sequence[str], where: str) -> pd.DataFrame:
    wanted = {video_key(n) for n in names}
    mine = df[[video_key(v) in wanted for v in df[column]]]
    if mine.empty:
        found = sorted({str(v) for v in df[column] if not is_blank(v)})
        raise BouldersegError(
            f"{where}: video '{names[0]}' has no annotation: no row names it in column '{column}' "
            f"(found: {', '.join(found) or 'nothing'}). Write one of {sorted(set(names))} there, "
            "or point the video's `annotation` at its own file.")
    return mine
