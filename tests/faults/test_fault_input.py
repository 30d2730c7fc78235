"""Hostile and broken input: keys that are paths, sheets with formulas, bombs and pickles. One message each,
naming the file (row and column where there are any) and what to do; nothing written."""
from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cliproject import boulderseg, project
from kit import failed_with, files
from sheetio import write_sheet

from conftest import REPO
from pipeline.core.errors import BouldersegError
from pipeline.core.names import under

EVIL = "../../../tmp/evil"


def with_key(root: Path, key: str) -> None:
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"] = {key: p["videos"]["clip"]}
    (root / "params.yaml").write_text(yaml.safe_dump(p))


@pytest.mark.parametrize("key", [EVIL, "a/b", ".hidden", "/abs/path", "a b", "clip\\x"])
def test_a_key_that_is_a_path_is_refused_by_validate_and_labels_writes_nothing(tmp_path, bikes, key):
    root = project(tmp_path, bikes)
    with_key(root, key)
    before = files(root)
    failed_with(boulderseg("validate", cwd=root), "params.yaml", "videos:", f"'{key}' is not a name",
                "letters, digits, '_', '-' and '.'")
    failed_with(boulderseg("stage", "labels", key, f"data/labels/{key}.csv", cwd=root), f"'{key}' is not a name")
    assert files(root) == before and not (root / "data/labels" / f"{key}.csv").resolve().exists()


def test_a_key_with_dots_inside_is_a_name(tmp_path, bikes):
    root = project(tmp_path, bikes)
    with_key(root, "climb1.face_2-b")
    r = boulderseg("stage", "labels", "climb1.face_2-b", "out.csv", cwd=root)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(root / "out.csv")) == 250


def test_a_head_named_like_a_path_is_refused(tmp_path, bikes):
    root = project(tmp_path, bikes)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["train"]["heads"]["../../x"] = p["train"]["heads"]["linear"]
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    failed_with(boulderseg("validate", cwd=root), "train.heads: '../../x' is not a name")


def test_a_path_built_from_names_may_not_leave_its_root_through_a_link(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "x3d_xs").symlink_to(tmp_path.parent)
    with pytest.raises(BouldersegError, match="resolves outside"):
        under(tmp_path / "models", "x3d_xs", "linear")
    with pytest.raises(BouldersegError, match="'..' is not a name"):
        under(tmp_path / "models", "..", "linear")


def write_with_formulas(path: Path) -> None:
    """Formulas with no computed value, as a script (openpyxl) writes them: a spreadsheet program would compute them."""
    write_sheet(path, [["Action", "Début", "Durée"], ["grimpe", 1.0, 2.0], ["lecture", "=B2+C2", 1.0],
                       ["=A2", 5.0, 1.0]])


def test_a_formula_without_a_computed_value_is_named_as_such(tmp_path, bikes):
    root = project(tmp_path, bikes)
    write_with_formulas(root / "annotation.xlsx")
    message = failed_with(boulderseg("stage", "labels", "clip", "out.csv", cwd=root), "annotation.xlsx, sheet 'Feuil1'",
                          "row 3, column 'Début': formula '=B2+C2' has no computed value",
                          "row 4, column 'Action': formula '=A2' has no computed value",
                          "open and save it in a spreadsheet program, or paste values")
    assert "empty" not in message and not (root / "out.csv").exists()


def test_a_100000_row_sheet_warns_in_a_few_lines_with_a_count(tmp_path, bikes):
    root = project(tmp_path, bikes)
    rows = [["Action", "Début", "Durée"], ["grimpe", 1.0, 2.0]] + [["lecture", 20 + i, 0.5] for i in range(100_000)]
    pd.DataFrame(rows[1:], columns=rows[0]).to_csv(root / "annotation.csv", index=False)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"]["clip"]["annotation"] = "annotation.csv"
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    r = boulderseg("stage", "labels", "clip", "out.csv", cwd=root)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    assert len(lines) == 6, lines
    assert lines[0] == "warning: annotation.csv, row 3: segment 'reading' 20-20.5 s lies outside the video (0-10 s); ignored"
    assert lines[-1] == "warning: ... and 99,995 more warnings like these (100,000 in all)"


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_the_papers_own_csv_is_read_without_a_column_mapping(tmp_path, bikes, delimiter):
    """The paper's annotation tool: action, starting-timestamp, ending-timestamp, in milliseconds."""
    root = project(tmp_path, bikes)
    write_sheet(root / "annotation.csv", [["action", "starting-timestamp", "ending-timestamp"],
                                          ["grimpe", 1000, 3000], ["lecture", 4480, 5040]], delimiter=delimiter)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"]["clip"]["annotation"] = "annotation.csv"
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    r = boulderseg("stage", "labels", "clip", "out.csv", cwd=root)
    assert r.returncode == 0, r.stderr
    labels = pd.read_csv(root / "out.csv")["label"]
    assert labels[24] == "nothing" and (labels[25:75] == "climbing").all() and labels[75] == "nothing"
    assert labels[111] == "nothing" and (labels[112:126] == "reading").all() and labels[126] == "nothing"


def test_an_xlsm_is_read_for_its_values_only(tmp_path, bikes):
    root = project(tmp_path, bikes)
    with zipfile.ZipFile(root / "annotation.xlsx") as src, zipfile.ZipFile(root / "annotation.xlsm", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"sheet.main+xml", b"sheet.macroEnabled.main+xml")
            dst.writestr(item, data)
        dst.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 macros that are never run")
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"]["clip"]["annotation"] = "annotation.xlsm"
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    assert boulderseg("stage", "labels", "clip", "a.csv", cwd=root).returncode == 0
    p["videos"]["clip"]["annotation"] = "annotation.xlsx"
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    assert boulderseg("stage", "labels", "clip", "b.csv", cwd=root).returncode == 0
    assert (root / "a.csv").read_bytes() == (root / "b.csv").read_bytes()


def test_a_zip_bomb_workbook_is_refused_before_it_is_parsed(tmp_path, bikes):
    root = project(tmp_path, bikes)
    shutil.copy(root / "annotation.xlsx", root / "bomb.xlsx")
    with zipfile.ZipFile(root / "bomb.xlsx", "a", zipfile.ZIP_DEFLATED) as z, z.open("xl/media/pad.bin", "w") as f:
        block = bytes(2**20)
        for _ in range(300):  # 300 MiB of zeros, ~300 KB packed
            f.write(block)
    assert (root / "bomb.xlsx").stat().st_size < 2 * 2**20
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"]["clip"]["annotation"] = "bomb.xlsx"
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    failed_with(boulderseg("stage", "labels", "clip", "out.csv", cwd=root), "bomb.xlsx: unpacks to 300 MiB",
                "over the 256 MiB limit", "export just that table")
    assert not (root / "out.csv").exists()


def test_a_sheet_10000_columns_wide_is_refused_with_the_limit(tmp_path, bikes):
    root = project(tmp_path, bikes)
    write_sheet(root / "annotation.xlsx", [["Action", "Début", "Durée", *[f"c{i}" for i in range(9_997)]],
                                          ["grimpe", 1.0, 2.0]])
    failed_with(boulderseg("stage", "labels", "clip", "out.csv", cwd=root), "annotation.xlsx, sheet 'Feuil1': 2 rows × 10,000 columns",
                "over the limit of 1,000 columns")


def test_a_file_named_xlsx_that_is_no_workbook_is_named(tmp_path, bikes):
    root = project(tmp_path, bikes)
    (root / "annotation.xlsx").write_bytes(b"Action,Debut,Duree\ngrimpe,1,2\n")
    failed_with(boulderseg("stage", "labels", "clip", "out.csv", cwd=root), "annotation.xlsx: not a .xlsx workbook",
                "Save it again")


class Payload:
    """Unpickling this runs `touch MARKER`: what a crafted model file does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted(path: Path, marker: Path, *, zip_format: bool) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if zip_format:
        torch.save({"weight": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))


@pytest.mark.parametrize("zip_format", [True, False])
def test_a_bundle_whose_head_would_run_code_is_refused_and_the_code_never_runs(tmp_path, zip_format):
    from pipeline.learning import bundle

    marker = tmp_path / "pwned"
    crafted(tmp_path / "bundle" / "head.pt", marker, zip_format=zip_format)
    (tmp_path / "bundle" / "bundle.json").write_text('{"head": "linear", "feature_dim": 8, "classes": ["a", "b"]}')
    with pytest.raises(BouldersegError, match="head.pt: refused: it holds Python objects"):
        bundle.load(tmp_path / "bundle")
    assert not marker.exists()


def test_backbone_weights_that_would_run_code_are_refused_and_the_code_never_runs(tmp_path):
    from pipeline.features import backbones

    spec = backbones.get("x3d_xs")
    marker = tmp_path / "pwned"
    crafted(tmp_path / "weights" / spec.weights.file.folder / spec.weights.file.name, marker, zip_format=True)
    with pytest.raises(BouldersegError, match="needs pickled objects.*no sha256 is pinned; it was not loaded"):
        spec.build(pretrained=True, weights_dir=tmp_path / "weights")
    assert not marker.exists()


def test_the_repository_params_pass_the_name_rule():
    from pipeline.core import params

    p = params.load(REPO / "params.yaml")
    assert all(under(Path("data/labels"), key, suffix=".csv") for key in p.videos)


@pytest.mark.parametrize("gone", ["annotation.xlsx", "videos/clip.mp4"])
def test_an_input_deleted_between_validate_and_the_stage_is_named(tmp_path, bikes, gone):
    root = project(tmp_path, bikes)
    assert boulderseg("validate", cwd=root).returncode == 0
    (root / gone).unlink()
    failed_with(boulderseg("stage", "labels", "clip", "out.csv", cwd=root), gone, "not found")
    assert not (root / "out.csv").exists()
