from __future__ import annotations

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
