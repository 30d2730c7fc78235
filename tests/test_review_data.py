"""What the review app and its report read from a project (`pipeline.review.data`, `pipeline.review.report`), on a
small synthetic project written file by file: frames manifests, persons tables, labels, an older `predict`'s
outputs. No stage runs."""
from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from openpyxl import load_workbook

from conftest import REPO
from pipeline.core import params
from pipeline.core.errors import BouldersegError
from pipeline.review import data, report
from pipeline.views import phases

N, FPS = 100, 25  # 4 s a video
MODEL = "models/x3d_xs/lstm (x3d_xs + lstm)"


def write_persons(path: Path, person: list[bool]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    boxes = [[0.0, 0.0, 10.0, 10.0] if p else None for p in person]
    pq.write_table(pa.table({"person": person, "near_box": boxes}), path)


def write_prediction(root: Path, key: str, labels: list[str], confidence: float) -> None:
    """frames.csv and report.json as `predict --all-unannotated` wrote them before frames with nobody in them were
    `nothing`: the head's label on every frame, no person column."""
    out = root / "data/unannotated/predicted" / key
    out.mkdir(parents=True)
    pd.DataFrame({"frame": range(len(labels)), "time": [i / FPS for i in range(len(labels))], "label": labels,
                  "confidence": confidence}).to_csv(out / "frames.csv", index=False)
    (out / "report.json").write_text(json.dumps({"model": "models/x3d_xs/lstm", "backbone": "x3d_xs", "head": "lstm"}))


@pytest.fixture
def project(tmp_path) -> tuple[params.Params, Path]:
    """`done`: annotated and labelled (reading 1.6 s, climbing 2.4 s), predicted before it was added; `new`: not
    annotated, predicted climbing throughout by an older `predict` while nobody is in frame in its last second."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["videos"] = {"done": {"climb": "c1", "view": "face", "video": "data/raw/videos/done.mp4",
                              "annotation": "data/raw/annotations/done.csv"}}
    raw["unannotated"] = {"new": {"video": "data/raw/videos/new.mp4", "climb": "c2", "view": "face"}}
    root = tmp_path / "project"
    for key in ("done", "new"):
        (root / "data/frames" / key).mkdir(parents=True)
        (root / "data/frames" / key / "manifest.json").write_text(json.dumps(
            {"fps": FPS, "frames": N, "duration_s": N / FPS, "width": 320, "height": 240}))
    write_persons(root / "data/persons/done.parquet", [True] * N)
    write_persons(root / "data/unannotated/persons/new.parquet", [True] * 75 + [False] * 25)
    (root / "data/labels").mkdir(parents=True)
    pd.DataFrame({"label": ["reading"] * 40 + ["climbing"] * 60}).to_csv(root / "data/labels/done.csv", index=False)
    write_prediction(root, "done", ["climbing"] * N, 0.1)
    write_prediction(root, "new", ["climbing"] * N, 0.8)
    return params.Params.model_validate(raw), root


def test_frames_with_nobody_in_them_are_nothing_in_the_prediction_its_row_and_the_report(project):
    p, root = project
    detail = data.video_detail(p, "new", root)
    assert detail["tracks"]["prediction"] == [{"label": "climbing", "start": 0, "end": 75},
                                              {"label": "nothing", "start": 75, "end": 100}]
    assert detail["models"] == {"prediction": MODEL} and len(detail["confidence"]) == N  # the head's, kept
    row = data.video_row(p, "new", [], root)
    assert row["status"] == "predicted" and row["phase_shares"] == {"climbing": 0.75, "nothing": 0.25}
    assert row["mean_confidence"] == 0.8
    rows = {r["video"]: r for r in report.rows(p, root)}
    assert rows["new"]["source"] == "prediction" and rows["new"]["model"] == MODEL
    assert rows["new"]["phases_s"] == {"climbing": 3.0, "brushing": 0.0, "reading": 0.0, "stopwatch": 0.0,
                                       "nothing": 1.0}
    assert rows["done"]["source"] == "truth" and rows["done"]["model"] is None
    assert rows["done"]["phases_s"]["nothing"] == 0.0 and rows["done"]["phases_s"]["climbing"] == 2.4
    flat = report.table(list(rows.values()), list(p.labels.classes))
    assert flat.set_index("video").loc["new", ["model", "nothing_s"]].tolist() == [MODEL, 1.0]


def test_an_annotated_video_keeps_no_confidence_or_phases_of_the_prediction_made_before_it_was_added(project):
    p, root = project
    row = data.video_row(p, "done", [], root)
    assert row["status"] == "annotated" and row["mean_confidence"] is None
    assert row["phase_shares"] == {"climbing": 0.6, "reading": 0.4}  # its labels, not the prediction's climbing
    (root / "data/labels/done.csv").unlink()  # just added: the labels stage has not run yet
    assert data.video_row(p, "done", [], root)["phase_shares"] == {}


def test_one_helper_reads_a_videos_entry_and_one_its_frames_manifest(project):
    p, root = project
    assert data.entry(p, "done").climb == "c1" and data.entry(p, "new").climb == "c2"
    assert data.manifest(root, "new")["frames"] == N and data.manifest(root, "unknown") is None
    assert data.frame_file(p, "new", N - 1, root) == root / "data/frames/new/000099.jpg"
    with pytest.raises(data.UnknownVideo):
        data.frame_file(p, "new", N, root)


def test_a_sheet_reads_back_as_the_labels_stage_reads_it_and_a_bad_one_raises(project, tmp_path):
    p, root = project
    labels = ["reading"] * 30 + ["climbing"] * 70
    words = phases.annotator_words(dict(p.labels.map), list(p.labels.classes))
    phases.write_segments(phases.segments_table(labels, fps=FPS, duration=N / FPS, words=words), tmp_path)
    m = data.manifest(root, "new")
    assert data.sheet_labels(p, "new", tmp_path / "segments.xlsx", m, root) == labels
    reviewed = root / data.reviewed_sheet("new")
    reviewed.parent.mkdir(parents=True)
    reviewed.write_bytes((tmp_path / "segments.xlsx").read_bytes())
    assert data.video_detail(p, "new", root)["tracks"]["truth"] == data.runs(labels)  # the saved sheet, shown
    pd.DataFrame({"label": ["dancing"], "start": [0], "end": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(BouldersegError, match="dancing"):
        data.sheet_labels(p, "new", tmp_path / "bad.csv", m, root)


def test_one_palette_the_default_class_grey():
    classes = ["climbing", "brushing", "reading", "stopwatch", "nothing"]
    colour = data.colours(classes)
    assert colour == {"climbing": "#1b9e77", "brushing": "#d95f02", "reading": "#7570b3", "stopwatch": "#e7298a",
                      "nothing": data.GREY}
    assert data.colours(["rest", "a", "b"], "rest") == {"rest": data.GREY, "a": "#1b9e77", "b": "#d95f02"}
    page = report.html_page([], classes)
    assert all(f"background:{colour[c]}" in page for c in classes)
    assert "nothing (no phase; in a prediction: nobody in frame)" in page


HOSTILE = {"climb": "=HYPERLINK(\"http://evil.example\",\"x\")", "view": "@SUM(A1)", "video": "-2+3"}


def hostile_rows() -> list[dict]:
    base = {"source": "prediction", "model": "=cmd|' /C calc'!A0", "duration_s": 4.0, "attempts": 1,
            "time_to_first_attempt_s": 1.0, "reading_before_attempt_s": [1.0], "brushing_total_s": 0.0,
            "phases_s": {"climbing": 3.0, "nothing": 1.0}}
    return [base | HOSTILE, base | {"climb": "+x", "view": "\tv", "video": "\rw", "model": None}]


def test_the_report_downloads_keep_typed_names_as_text_and_numbers_as_numbers():
    frame = report.table(hostile_rows(), ["climbing", "nothing"])
    parsed = list(csv.DictReader(io.StringIO(report.csv_text(frame))))
    assert [parsed[0][k] for k in HOSTILE] == [f"'{v}" for v in HOSTILE.values()]
    assert [parsed[1][k] for k in ("climb", "view", "video")] == ["'+x", "'\tv", "'\rw"]
    assert parsed[0]["model"] == "'=cmd|' /C calc'!A0" and parsed[0]["climbing_s"] == "3.0"
    assert report.csv_text(pd.DataFrame({"delta": [-1.5], "name": ["-1.5"]})).splitlines() == ["delta,name",
                                                                                                "-1.5,'-1.5"]
    sheet = load_workbook(io.BytesIO(report.xlsx_bytes(frame))).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    assert all(c.data_type == "s" for c in cells if isinstance(c.value, str))
    header = [c.value for c in next(sheet.iter_rows())]
    first = dict(zip(header, [c.value for c in list(sheet.iter_rows())[1]]))
    assert {k: first[k] for k in HOSTILE} == HOSTILE  # as typed, only never run
    assert first["duration_s"] == 4.0 and first["attempts"] == 1


class ScriptData(HTMLParser):
    """The text of every <script> element, as a browser's tokenizer splits the page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "script":
            self._open = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._open = self._open and tag != "script"

    def handle_data(self, text: str) -> None:
        if self._open:
            self.scripts[-1] += text


def test_the_html_reports_json_stays_inside_its_script_whatever_the_names(tmp_path):
    rows = hostile_rows() + [hostile_rows()[1] | {"climb": "<!--<script>", "view": "</script><script>alert(1)",
                                                  "video": "a&b>c"}]
    rows[0]["model"] = MODEL
    page = report.html_page(rows, ["climbing", "nothing"])
    parser = ScriptData()
    parser.feed(page)
    assert len(parser.scripts) == 1 and json.loads(parser.scripts[0]) == rows
    assert not any(ch in parser.scripts[0] for ch in "<>&")  # a browser's script states see nothing to act on
    assert f"prediction of {MODEL}" in page  # the row names the model that made it
