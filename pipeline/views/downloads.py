"""Tables as files people open in a spreadsheet (segments, the competition report): text someone typed (a climb,
view or video name, an annotator's word) stays text and never runs as a formula."""
from __future__ import annotations

import io

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection rule


def neutral(value: object) -> object:
    """A CSV cell as OWASP advises: text starting like a formula gets a leading `'`; numbers stay numbers."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_text(frame: pd.DataFrame) -> str:
    """`frame` as CSV (no index, CRLF rows as RFC 4180 has them, so a cell holding a lone CR is quoted), every text
    cell and header neutralised."""
    return frame.rename(columns=neutral).map(neutral).to_csv(index=False, lineterminator="\r\n")


def xlsx_bytes(frame: pd.DataFrame, *, sheet: str) -> bytes:
    """`frame` as an .xlsx workbook of one sheet: numbers as numbers, empty cells empty, every text cell stored as
    text (openpyxl would store one starting with `=` as a formula)."""
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = sheet
    rows = [list(frame.columns), *([None if pd.isna(v) else v.item() if hasattr(v, "item") else v for v in row]
                                   for row in frame.itertuples(index=False))]
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(r, c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
