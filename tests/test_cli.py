from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd

from conftest import REPO

BIN = Path(sys.executable).parent


def boulderseg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "boulderseg"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_help_lists_every_stage(tmp_path):
    r = boulderseg("--help", cwd=tmp_path)
    assert r.returncode == 0
    for cmd in ("labels", "frames", "persons", "features", "train", "evaluate", "sample"):
        assert cmd in r.stdout


def test_labels_writes_one_row_per_frame(tmp_path, bikes):
    p = project(tmp_path)
    sheet = p / "a.csv"
    sheet.write_text("Action;Début;Durée\n".replace(";", ",") + "grimpe,1.0,2.0\nlecture,4.5,0.5\n")
    r = boulderseg("labels", str(sheet), str(bikes), "out.csv", cwd=p)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(p / "out.csv")
    assert list(df.columns) == ["frame", "time", "label"] and len(df) == 250
    assert df["label"].iloc[24] == "nothing" and df["label"].iloc[25] == "climbing"
    assert df["label"].iloc[74] == "climbing" and df["label"].iloc[75] == "nothing"
    # 4.5 s falls between frames 112 (4.48 s) and 113 (4.52 s); 5.0 s is frame 125, excluded
    assert df["label"].iloc[112] == "nothing" and (df["label"].iloc[113:125] == "reading").all()
    assert df["label"].iloc[125] == "nothing"
    assert df["time"].iloc[25] == 1.0


def test_unknown_label_exits_nonzero_naming_file_and_row_without_output(tmp_path, bikes):
    p = project(tmp_path)
    wb = openpyxl.Workbook()
    for row in (["Action", "Début", "Durée"], ["grimpe", 0, 1], ["dormir", 2, 1]):
        wb.active.append(row)
    wb.save(p / "bad.xlsx")
    r = boulderseg("labels", "bad.xlsx", str(bikes), "out.csv", cwd=p)
    assert r.returncode == 1
    assert "error: bad.xlsx: 1 problem(s)" in r.stderr and "row 3, column 'Action': unknown label 'dormir'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (p / "out.csv").exists() and not list(p.glob(".out.csv.tmp-*"))


def test_unreadable_video_exits_nonzero_without_output(tmp_path):
    p = project(tmp_path)
    (p / "clip.mp4").write_text("not a video")
    r = boulderseg("frames", "clip.mp4", "frames/clip", cwd=p)
    assert r.returncode == 1
    assert "error: clip.mp4: cannot decode this video" in r.stderr and "Traceback" not in r.stderr
    assert not (p / "frames" / "clip").exists()
