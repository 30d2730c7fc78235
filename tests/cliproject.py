"""A one-video project in a temp folder (real footage, an annotation sheet), and `boulderseg` run in it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from sheetio import write_sheet

from conftest import REPO

BIN = Path(sys.executable).parent


def boulderseg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "boulderseg"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def project(tmp_path: Path, bikes: Path, rows: list[list] | None = None) -> Path:
    """params.yaml with one video (real footage, 10 s at 25 fps) annotated in `annotation.xlsx`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "videos").mkdir()
    shutil.copy(bikes, tmp_path / "videos" / "clip.mp4")
    params["videos"] = {"clip": {"climb": "c1", "video": "videos/clip.mp4", "annotation": "annotation.xlsx"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_sheet(tmp_path / "annotation.xlsx", rows or [["Action", "Début", "Durée"], ["grimpe", 1.0, 2.0],
                                                       ["lecture", "4,5", 0.5], ["chrono", 9.5, 1.0]])
    return tmp_path
