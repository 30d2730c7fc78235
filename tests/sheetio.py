"""Write annotation files in every format users bring: .xlsx, .xls, .ods, .csv (one or more sheets)."""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd

Rows = list[list]


def _day_fraction(value: dt.time | dt.timedelta) -> float:
    if isinstance(value, dt.time):
        value = dt.timedelta(hours=value.hour, minutes=value.minute, seconds=value.second,
                             microseconds=value.microsecond)
    return value.total_seconds() / 86400


def write_sheets(path: Path, sheets: dict[str, Rows], *, delimiter: str = ",") -> Path:
    """One sheet per entry (a .csv takes exactly one); time and timedelta values become time cells."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        (rows,) = sheets.values()
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter=delimiter).writerows(rows)
    elif suffix == ".xlsx":
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for name, rows in sheets.items():
            ws = wb.create_sheet(name)
            for row in rows:
                ws.append(row)
            for row in ws.iter_rows():
                for cell in row:
                    if isinstance(cell.value, (dt.time, dt.timedelta)):
                        cell.number_format = "hh:mm:ss.000"
        wb.save(path)
    elif suffix == ".xls":
        import xlwt

        wb, time_style = xlwt.Workbook(), xlwt.easyxf(num_format_str="hh:mm:ss.000")
        for name, rows in sheets.items():
            ws = wb.add_sheet(name)
            for r, row in enumerate(rows):
                for c, v in enumerate(row):
                    if isinstance(v, (dt.time, dt.timedelta)):  # xlwt drops microseconds of time objects
                        ws.write(r, c, _day_fraction(v), time_style)
                    elif v is not None:
                        ws.write(r, c, v)
        wb.save(str(path))
    elif suffix == ".ods":
        with pd.ExcelWriter(path, engine="odf") as writer:
            for name, rows in sheets.items():
                pd.DataFrame(rows[1:], columns=rows[0]).to_excel(writer, sheet_name=name, index=False)
    else:
        raise ValueError(suffix)
    return path


def write_sheet(path: Path, rows: Rows, *, sheet: str = "Feuil1", delimiter: str = ",") -> Path:
    return write_sheets(path, {sheet: rows}, delimiter=delimiter)
