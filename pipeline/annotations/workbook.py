"""What a workbook holds before it is parsed: its size, and formulas saved without a computed value.

Annotation files come from colleagues, so they are checked before calamine reads them: a zip bomb
or a sheet of absurd size is refused with the limit in the message. calamine reads cell values only
(an .xlsm's macros are never run); a formula cell that was saved without its computed value (files
written by scripts, not spreadsheet programs) reads as empty, so such cells are found here by name.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from pipeline.core.errors import BouldersegError

MAX_BYTES = 256 * 2**20  # uncompressed: a 100,000-row annotation sheet is ~10 MB
MAX_COLUMNS = 1_000  # an annotation sheet has a handful
MAX_CELLS = 5_000_000
ZIPPED = (".xlsx", ".xlsm", ".ods")
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
       "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}
_REF = re.compile(r"([A-Z]+)(\d+)")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def check_size(path: Path) -> None:
    """Refuse a file whose content (uncompressed, for a zipped workbook) or sheet dimensions are absurd."""
    fix = "An annotation file holds one row per segment; export just that table to .xlsx or .csv."
    if path.suffix.lower() not in ZIPPED:
        if path.stat().st_size > MAX_BYTES:
            raise BouldersegError(f"{path}: {_mib(path.stat().st_size)}, over the {_mib(MAX_BYTES)} limit. {fix}")
        return
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > MAX_BYTES:
                raise BouldersegError(f"{path}: unpacks to {_mib(total)}, over the {_mib(MAX_BYTES)} limit "
                                      f"(a zip bomb, or not an annotation sheet). {fix}")
            if path.suffix.lower() != ".ods":
                for name, member in _sheet_members(z).items():
                    _check_dimension(path, name, z, member, fix)
    except zipfile.BadZipFile as e:
        raise BouldersegError(f"{path}: not a {path.suffix} workbook ({e}). Save it again from a spreadsheet program.") from None


def _check_dimension(path: Path, sheet: str, z: zipfile.ZipFile, member: str, fix: str) -> None:
    with z.open(member) as f:
        head = f.read(4096).decode("utf-8", errors="replace")
    m = re.search(r'<(?:\w+:)?dimension ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"', head)
    if not m or not m.group(3):
        return
    columns = _column(m.group(3)) - _column(m.group(1)) + 1
    rows = int(m.group(4)) - int(m.group(2)) + 1
    if columns > MAX_COLUMNS or rows * columns > MAX_CELLS:
        raise BouldersegError(f"{path}, sheet '{sheet}': {rows:,} rows × {columns:,} columns, over the limit of "
                              f"{MAX_COLUMNS:,} columns and {MAX_CELLS:,} cells. {fix}")


def _column(letters: str) -> int:
    """'A' -> 1, 'AA' -> 27."""
    n = 0
    for c in letters:
        n = n * 26 + ord(c) - 64
    return n


def _sheet_members(z: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its XML member in an .xlsx/.xlsm."""
    book = ElementTree.fromstring(z.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    target = {r.get("Id"): r.get("Target") for r in rels.findall("rel:Relationship", _NS)}
    out = {}
    for sheet in book.findall("m:sheets/m:sheet", _NS):
        t = target.get(sheet.get(f"{{{_NS['r']}}}id"), "")
        out[sheet.get("name")] = t.lstrip("/") if t.startswith("/") else str(PurePosixPath("xl") / t)
    return out


def formulas_without_values(path: Path, sheet: str) -> dict[tuple[int, int], str]:
    """(row, column), both counted from the sheet's used range (header row = 1, first column = 0) -> the
    formula of every cell saved without a computed value. Empty for other formats."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return {}
    with zipfile.ZipFile(path) as z:
        member = _sheet_members(z).get(sheet)
        if member is None:
            return {}
        found, first_row, first_col = {}, None, None
        with z.open(member) as f:
            for _, cell in ElementTree.iterparse(f):
                if cell.tag != f"{{{_NS['m']}}}c":
                    continue
                ref = _REF.fullmatch(cell.get("r", ""))
                if ref is None:
                    continue
                col, row = _column(ref.group(1)), int(ref.group(2))
                first_row = row if first_row is None else min(first_row, row)
                first_col = col if first_col is None else min(first_col, col)
                formula, value = cell.find("m:f", _NS), cell.find("m:v", _NS)
                if formula is not None and (value is None or not (value.text or "").strip()):
                    found[row, col] = formula.text or ""
                cell.clear()
    return {(row - first_row + 1, col - first_col): f for (row, col), f in found.items()}
