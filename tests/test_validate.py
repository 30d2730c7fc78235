"""`validate`: every annotation read against its real video; files and the videos table cross-checked."""
from __future__ import annotations

import shutil

import pytest
import yaml
from sheetio import write_sheet, write_sheets

from conftest import REPO
from pipeline.annotations.validate import validate
from pipeline.core.params import Params


@pytest.fixture
def project(tmp_path, bikes, monkeypatch):
    """Two 10 s videos (real footage), one annotated in its own sheet, one in a shared workbook."""
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        (tmp_path / "videos").mkdir(exist_ok=True)
        shutil.copy(bikes, tmp_path / "videos" / f"{name}.mp4")
    (tmp_path / "ann").mkdir()
    write_sheet(tmp_path / "ann" / "a.csv", [["label", "start", "end"], ["grimpe", 1, 2], ["lecture", 9, 11]])
    write_sheets(tmp_path / "ann" / "book.xlsx", {"b": [["label", "start", "end"], ["chrono", 0, 1]]})
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["videos"] = {"a": {"climb": "c1", "video": "videos/a.mp4", "annotation": "ann/a.csv"},
                        "b": {"climb": "c1", "video": "videos/b.mp4", "annotation": "ann/book.xlsx", "offset": 0.5}}
    return params


def test_clean_dataset_passes_with_a_clipping_warning(project):
    report = validate(Params.model_validate(project))
    assert report.problems == []
    assert report.summaries == ["a: 250 frames, 2 segments from ann/a.csv",
                                "b: 250 frames, 1 segments from ann/book.xlsx, sheet 'b'"]
    assert report.warnings == ["ann/a.csv, row 3: segment 'reading' 9-11 s runs past the video (0-10 s); clipped"]


def test_every_kind_of_mismatch_is_reported_at_once(project, tmp_path):
    write_sheets(tmp_path / "ann" / "book.xlsx", {
        "b": [["video", "label", "start", "end"], ["b.mp4", "chrono", 0, 1], ["zz", "grimpe", 1, 2],
              ["zz", "grimpe", 3, 4]],
        "spare": [["label", "start", "end"], ["grimpe", 0, 1]],
        "legend": [["code", "meaning"], ["grimpe", "climbing"]]})  # not annotations: never reported
    write_sheet(tmp_path / "ann" / "orphan.xlsx", [["label", "start", "end"], ["grimpe", 0, 1]])
    shutil.copy(tmp_path / "videos" / "a.mp4", tmp_path / "videos" / "unlisted.mp4")
    project["videos"]["c"] = {"climb": "c2", "video": "videos/missing.mp4", "annotation": "ann/a.csv"}
    project["videos"]["d"] = {"climb": "c2", "video": "videos/a.mp4", "annotation": "ann/missing.csv"}
    problems = validate(Params.model_validate(project)).problems
    assert problems == [
        "videos.c: annotation without video: videos/missing.mp4 not found. Put the video there or remove the entry.",
        "videos.d: video without annotation: ann/missing.csv not found. Annotate the video or remove the entry.",
        "ann/orphan.xlsx: annotation without video: no entry of params.yaml videos or unannotated uses it. "
        "Add an entry for it, or move it out of ann.",
        "videos/unlisted.mp4: video without annotation: no entry of params.yaml videos or unannotated uses it. "
        "Add an entry for it, or move it out of videos.",
        "ann/book.xlsx, sheet 'b', column 'video': annotation without video: rows 3, 4 name video 'zz', which no "
        "entry of params.yaml videos reading this file is called. Add the video to params.yaml or fix the name.",
        "ann/book.xlsx, sheet 'spare': annotation without video: no video reads this sheet. Name it after a video, "
        "or set `sheet:` in that video's params entry."]


def test_problems_inside_sheets_of_several_videos_are_all_listed(project, tmp_path):
    write_sheet(tmp_path / "ann" / "a.csv", [["label", "start", "end"], ["sauter", 1, 2]])
    write_sheets(tmp_path / "ann" / "book.xlsx", {"b": [["label", "start"], ["chrono", 0]]})
    problems = validate(Params.model_validate(project)).problems
    assert len(problems) == 2
    assert problems[0].startswith("ann/a.csv: 1 problem(s):\n  row 2, column 'label': unknown label 'sauter'")
    assert problems[1].startswith("ann/book.xlsx, sheet 'b': missing column(s) duration or end")
