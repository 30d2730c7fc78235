from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.annotations.segments import LabelPolicy, frame_labels, read_segments
from pipeline.core.params import Labels
from pipeline.views import phases

MAP = {"grimpe": "climbing", "brossage": "brushing", "lecture": "reading", "observation": "reading",
       "chrono": "stopwatch", "rien": "nothing"}
CLASSES = ["climbing", "brushing", "reading", "stopwatch", "nothing"]
# 10 fps: reading 0-0.3 s, climbing 0.3-0.5 s, nothing 0.5-0.6 s, reading 0.6-0.8 s, climbing 0.8-1.0 s
LABELS = ["reading"] * 3 + ["climbing"] * 2 + ["nothing"] + ["reading"] * 2 + ["climbing"] * 2


def test_phases_are_runs_that_cover_every_frame_once():
    runs = phases.phases(LABELS)
    assert [(r.label, r.start, r.end) for r in runs] == [
        ("reading", 0, 3), ("climbing", 3, 5), ("nothing", 5, 6), ("reading", 6, 8), ("climbing", 8, 10)]
    assert phases.phases([]) == []


def test_annotator_words_are_the_first_raw_label_of_each_class():
    assert phases.annotator_words(MAP, CLASSES + ["other"]) == {
        "climbing": "grimpe", "brushing": "brossage", "reading": "lecture", "stopwatch": "chrono", "nothing": "rien",
        "other": "other"}


@pytest.mark.parametrize("seconds, text", [(0, "00:00.00"), (12.5, "00:12.50"), (59.999, "01:00.00"), (61.04, "01:01.04"),
                                           (3600.2, "60:00.20")])
def test_clock(seconds, text):
    assert phases.clock(seconds) == text


def test_segments_tile_the_video_to_its_end():
    # the video lasts 1.03 s: its last frame instant is 0.9 s, so the last phase runs to 1.03, not 1.0
    table = phases.segments_table(LABELS, fps=10, duration=1.03, words=phases.annotator_words(MAP, CLASSES))
    assert table["label"].tolist() == ["lecture", "grimpe", "rien", "lecture", "grimpe"]
    assert table["start (s)"].tolist() == [0.0, 0.3, 0.5, 0.6, 0.8]
    assert table["duration (s)"].tolist() == [0.3, 0.2, 0.1, 0.2, 0.23]
    assert table["start"].tolist() == ["00:00.00", "00:00.30", "00:00.50", "00:00.60", "00:00.80"]
    assert table["duration"].iloc[-1] == "00:00.23"
    ends = table["start (s)"] + table["duration (s)"]
    assert np.allclose(ends[:-1], table["start (s)"][1:]) and ends.iloc[-1] == pytest.approx(1.03)


def test_the_written_sheets_read_back_to_the_same_frame_labels(tmp_path):
    fps, labels = 25.0, ["reading"] * 30 + ["climbing"] * 47 + ["brushing"] * 13 + ["reading"] * 10
    table = phases.segments_table(labels, fps=fps, duration=len(labels) / fps,
                                  words=phases.annotator_words(MAP, CLASSES))
    phases.write_segments(table, tmp_path)
    policy = LabelPolicy.from_params(Labels(classes=CLASSES, map=MAP), fps=fps)
    for name in ("segments.csv", "segments.xlsx"):
        segments, _ = read_segments(tmp_path / name, policy)
        assert frame_labels(segments, n_frames=len(labels), fps=fps, policy=policy) == labels, name
    cells = [c for row in load_workbook(tmp_path / "segments.xlsx").active.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)  # values, never formulas
    assert pd.read_csv(tmp_path / "segments.csv").columns.tolist() == [
        "label", "start", "duration", "start (s)", "duration (s)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segments.csv", "segments.xlsx"]  # no temp file left


def test_report_adds_up_the_phases():
    person = [True] * 8 + [False] * 2
    r = phases.report(LABELS, person, fps=10, duration=1.0)
    assert r["phases"] == {"reading": {"total_s": 0.5, "mean_s": 0.25, "count": 2},
                           "climbing": {"total_s": 0.4, "mean_s": 0.2, "count": 2},
                           "nothing": {"total_s": 0.1, "mean_s": 0.1, "count": 1}}
    assert r["attempts"] == 2 and r["time_to_first_attempt_s"] == 0.3
    assert r["reading_before_attempt_s"] == [0.3, 0.2] and r["nobody_in_frame_share"] == 0.2
    none = phases.report(["reading"] * 4, [True] * 4, fps=10, duration=0.4)
    assert none["attempts"] == 0 and none["time_to_first_attempt_s"] is None and none["reading_before_attempt_s"] == []


def test_words_anyone_typed_are_text_in_both_sheets(tmp_path):
    words = {"climbing": "=cmd|' /C calc'!A0", "reading": "@lecture"}
    table = phases.segments_table(["reading"] * 5 + ["climbing"] * 5, fps=10, duration=1.0, words=words)
    phases.write_segments(table, tmp_path)
    assert pd.read_csv(tmp_path / "segments.csv")["label"].tolist() == ["'@lecture", "'=cmd|' /C calc'!A0"]
    sheet = load_workbook(tmp_path / "segments.xlsx").active
    labels = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in labels] == ["@lecture", "=cmd|' /C calc'!A0"] and {c.data_type for c in labels} == {"s"}


def test_a_predicted_video_whose_last_second_shows_nobody_reports_it_as_nothing(tmp_path):
    """`predict`'s outputs from a real bundle (a head trained on synthetic features) that sees climbing in every
    window of a 4 s video, the person filter finding nobody in its last second: every file says nothing there."""
    from test_selection import LOGREG, dataset

    from pipeline.features.store import FeatureSet
    from pipeline.learning import bundle
    from pipeline.learning.dataset import nearest_window
    from pipeline.learning.train import Loss
    from pipeline.views.commands import phase_table
    from pipeline.views.predict import nobody_label, write_outputs

    assert nobody_label({"labels": {"default": "rest"}}) == "rest"  # a bundle's labels.default, when it records one

    info = {"backbone": {"backbone": "synthetic", "fps": 25}, "mode_filter": 0, "frames": {"short_side": None},
            "labels": {"classes": CLASSES, "drop": ["nothing"], "merge": {}, "map": MAP}}  # no default: an older bundle
    model = tmp_path / "model"
    bundle.train_bundle(dataset(), LOGREG, model, info=info, cv_metrics=None, classes=["climbing", "brushing",
                        "reading"], min_person_fraction=0.5, seed=0, loss=Loss())
    head, meta = bundle.load(model)
    windows = np.zeros((13, 6), np.float32)
    windows[:, 0] = 2.0  # class 0, climbing, in every window (the synthetic features' rule)
    ranges = np.stack([np.arange(13) * 8, np.arange(13) * 8 + 8], 1).astype(np.int32)
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames/manifest.json").write_text('{"duration_s": 4.0, "width": 320, "height": 240}')
    out = tmp_path / "out"
    out.mkdir()
    person = np.r_[np.ones(75, bool), np.zeros(25, bool)]
    result = write_outputs(Path("clip.mp4"), head, meta, model, out, person=person,
                           stores=[FeatureSet(windows, ranges, {})], frames_dir=tmp_path / "frames")
    frames = pd.read_csv(out / "frames.csv")
    assert frames["label"].tolist() == ["climbing"] * 75 + ["nothing"] * 25
    _, confidence = bundle.predict(head, meta, windows, nearest_window(ranges, 100))
    assert frames["person"].tolist() == person.tolist()
    assert frames["confidence"].tolist() == pytest.approx(confidence, abs=1e-4)  # the head's, nobody or not
    assert phase_table(result.report).splitlines()[1:3] == ["climbing       3.00    3.00     1",
                                                            "nothing        1.00    1.00     1"]
    assert "nobody in frame: 25.0 % of the video, counted as nothing above" in phase_table(result.report)
    segments = pd.read_csv(out / "segments.csv")
    assert segments["label"].tolist() == ["grimpe", "rien"] and segments["duration (s)"].tolist() == [3.0, 1.0]
    saved = json.loads((out / "report.json").read_text())
    assert saved["phases"]["nothing"]["total_s"] == 1.0 and saved["nobody_in_frame_label"] == "nothing"
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_a_climb_the_camera_loses_for_a_while_is_one_attempt():
    labels = ["reading"] * 10 + ["climbing"] * 20 + ["nothing"] * 30 + ["climbing"] * 20 + ["nothing"] * 5
    lost = [True] * 30 + [False] * 30 + [True] * 20 + [False] * 5  # nobody in frame: nothing, one climb
    r = phases.report(labels, lost, fps=10, duration=8.5)
    assert (r["attempts"], r["time_to_first_attempt_s"], r["reading_before_attempt_s"]) == (1, 1.0, [1.0])
    assert r["phases"]["nothing"]["total_s"] == 3.5 and r["phases"]["climbing"]["count"] == 2
    stepped_off = phases.report(labels, [True] * 85, fps=10, duration=8.5)  # seen resting between: two attempts
    assert (stepped_off["attempts"], stepped_off["reading_before_attempt_s"]) == (2, [1.0, 0.0])
