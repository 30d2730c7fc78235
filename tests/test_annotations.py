from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from pipeline.annotations import Segment, frame_index_at, frame_labels, normalize, read_segments
from pipeline.errors import BouldersegError

CLASSES = ["climbing", "brushing", "reading", "stopwatch", "nothing"]
MAP = {"grimpe": "climbing", "brossage": "brushing", "lecture": "reading", "chrono": "stopwatch"}


def write_xlsx(path: Path, rows: list[list]) -> Path:
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    wb.save(path)
    return path


def test_normalize_ignores_case_accents_and_spacing():
    assert normalize("  Début\t ") == "debut"
    assert normalize("DURÉE") == "duree"
    assert normalize("Temps_Fin") == "temps fin"


def test_frame_index_at_is_exact_on_frame_times():
    # 2.4 s is frame 60 at 25 fps even when a spreadsheet stores it as 2.3999999999999999
    assert frame_index_at(2.4, 25) == 60
    assert frame_index_at(1.2 + 1.2, 25) == 60
    assert frame_index_at(0.1 + 0.2, 10) == 3
    assert frame_index_at(2.401, 25) == 61
    assert frame_index_at(-1.0, 25) == 0


def test_frame_labels_half_open_intervals_and_gaps():
    segs = [Segment("climbing", 0.2, 0.4, 2), Segment("reading", 0.5, 0.7, 3)]
    labels = frame_labels(segs, n_frames=10, fps=10, default="nothing")
    assert labels == ["nothing", "nothing", "climbing", "climbing", "nothing",
                      "reading", "reading", "nothing", "nothing", "nothing"]


def test_frame_labels_overlap_later_row_wins_without_shifting_later_frames():
    segs = [Segment("climbing", 0.0, 0.6, 2), Segment("brushing", 0.4, 0.8, 3), Segment("reading", 0.8, 1.0, 4)]
    labels = frame_labels(segs, n_frames=10, fps=10, default="nothing")
    assert labels == ["climbing"] * 4 + ["brushing"] * 4 + ["reading"] * 2


def test_frame_labels_clip_segments_past_the_end():
    labels = frame_labels([Segment("climbing", 0.8, 5.0, 2)], n_frames=10, fps=10, default="nothing")
    assert labels == ["nothing"] * 8 + ["climbing"] * 2


def test_read_xlsx_french_headers_start_duration(tmp_path):
    path = write_xlsx(tmp_path / "a.xlsx", [["Action", "Début", "Durée"], ["grimpe", 0.5, 1.25],
                                            ["Brossage ", "2,5", 1], ["LECTURE", 4, 0.4]])
    assert read_segments(path, label_map=MAP, classes=CLASSES) == [
        Segment("climbing", 0.5, 1.75, 2), Segment("brushing", 2.5, 3.5, 3), Segment("reading", 4.0, 4.4, 4)]


def test_read_csv_english_headers_start_end(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("label,start,end\nclimbing,1.0,2.0\nstopwatch,3,3.5\n")
    assert read_segments(path, label_map=MAP, classes=CLASSES) == [
        Segment("climbing", 1.0, 2.0, 2), Segment("stopwatch", 3.0, 3.5, 3)]


def test_unknown_label_names_file_row_column_and_how_to_fix(tmp_path):
    path = write_xlsx(tmp_path / "bad.xlsx", [["Action", "Début", "Durée"], ["grimpe", 0, 1], ["sauter", 1, 1]])
    with pytest.raises(BouldersegError) as e:
        read_segments(path, label_map=MAP, classes=CLASSES)
    msg = str(e.value)
    assert str(path) in msg and "row 3, column 'Action': unknown label 'sauter'" in msg
    assert "labels.map" in msg and "grimpe" in msg


def test_all_problems_of_a_sheet_are_reported_together(tmp_path):
    path = write_xlsx(tmp_path / "bad.xlsx", [["label", "start", "duration"], ["x", 0, 1], ["grimpe", "abc", 1],
                                              ["grimpe", 2, 0]])
    with pytest.raises(BouldersegError) as e:
        read_segments(path, label_map=MAP, classes=CLASSES)
    msg = str(e.value)
    assert "3 problem(s)" in msg
    assert "row 2, column 'label': unknown label 'x'" in msg
    assert "row 3, column 'start': expected seconds (12.5 or 12,5), mm:ss(.ss) or hh:mm:ss, got 'abc'" in msg
    assert "row 4: segment ends at 2.0s, not after its start 2.0s" in msg


def test_missing_column_lists_what_was_found(tmp_path):
    path = write_xlsx(tmp_path / "bad.xlsx", [["label", "when"], ["grimpe", 0]])
    with pytest.raises(BouldersegError, match=r"missing column\(s\) start, duration or end; found \['label', 'when'\]"):
        read_segments(path, label_map=MAP, classes=CLASSES)


def test_header_units_and_clock_strings(tmp_path):
    ms = write_xlsx(tmp_path / "ms.xlsx", [["Activité", "Début (ms)", "Fin (ms)"], ["chrono", 1500, 2250]])
    assert read_segments(ms, label_map=MAP, classes=CLASSES) == [Segment("stopwatch", 1.5, 2.25, 2)]
    frames = tmp_path / "frames.csv"
    frames.write_text("classe,start_frame,duration_frames\ngrimpe,50,25\n")
    assert read_segments(frames, label_map=MAP, classes=CLASSES, fps=25) == [Segment("climbing", 2.0, 3.0, 2)]
    clock = write_xlsx(tmp_path / "clock.xlsx", [["Label", "Start", "End"], ["lecture", "01:02.5", "0:01:04"]])
    assert read_segments(clock, label_map=MAP, classes=CLASSES) == [Segment("reading", 62.5, 64.0, 2)]
