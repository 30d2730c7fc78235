"""Every file layout and time format annotators write, and every error, with its exact message."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sheetio import write_sheet, write_sheets

from pipeline.annotations.segments import LabelPolicy, Segment, frame_index_at, frame_labels, read_segments
from pipeline.core.errors import BouldersegError

CLASSES = ("climbing", "brushing", "reading", "stopwatch", "nothing")
MAP = {"grimpe": "climbing", "brossage": "brushing", "lecture": "reading", "chrono": "stopwatch"}
POLICY = LabelPolicy(classes=CLASSES, label_map=MAP, annotation_fps=25)
FORMATS = (".xlsx", ".xls", ".ods", ".csv")
EXPECTED = [Segment("climbing", 0.5, 1.75, 2), Segment("brushing", 2.5, 3.5, 3), Segment("reading", 62.5, 63.0, 4)]


def read(path, **kw):
    return read_segments(path, kw.pop("policy", POLICY), **kw)


@pytest.mark.parametrize("suffix", FORMATS)
def test_each_file_format_french_headers_mixed_time_forms(tmp_path, suffix):
    time_cell = dt.time(0, 1, 2, 500000) if suffix != ".csv" else "00:01:02.5"
    rows = [["Action", "Début", "Durée"], ["grimpe", 0.5, 1.25], ["Brossage ", "2,5", 1], ["LECTURE", time_cell, "0,5"]]
    segs, where = read(write_sheet(tmp_path / f"a{suffix}", rows))
    assert segs == EXPECTED
    assert where == (str(tmp_path / "a.csv") if suffix == ".csv" else f"{tmp_path / f'a{suffix}'}, sheet 'Feuil1'")


def test_semicolon_csv_with_comma_decimals(tmp_path):
    path = write_sheet(tmp_path / "a.csv", [["Activité", "Temps début", "Temps fin"], ["chrono", "1,5", "2,25"]],
                       delimiter=";")
    assert read(path)[0] == [Segment("stopwatch", 1.5, 2.25, 2)]


def test_header_units_frames_and_explicit_columns(tmp_path):
    ms = write_sheet(tmp_path / "ms.xlsx", [["Classe", "Début (ms)", "Fin (ms)"], ["chrono", 1500, 2250]])
    assert read(ms)[0] == [Segment("stopwatch", 1.5, 2.25, 2)]
    frames = write_sheet(tmp_path / "f.csv", [["class", "start_frame", "duration_frames"], ["grimpe", 50, 25]])
    assert read(frames)[0] == [Segment("climbing", 2.0, 3.0, 2)]
    custom = write_sheet(tmp_path / "c.xlsx", [["Quoi", "T0", "T1"], ["lecture", 1, 2]])
    policy = dataclasses.replace(POLICY, columns={"label": "quoi", "start": "T0", "end": "t1"})
    assert read(custom, policy=policy)[0] == [Segment("reading", 1.0, 2.0, 2)]


def test_blank_rows_are_skipped_and_row_numbers_stay_those_of_the_sheet(tmp_path):
    path = write_sheet(tmp_path / "a.xlsx", [["label", "start", "end"], ["grimpe", 0, 1], [None, None, None],
                                             ["lecture", 2, 3]])
    assert read(path)[0] == [Segment("climbing", 0.0, 1.0, 2), Segment("reading", 2.0, 3.0, 4)]


def test_one_sheet_per_video_is_found_by_the_video_name(tmp_path):
    path = write_sheets(tmp_path / "all.xlsx", {
        "Climb1 Face": [["label", "start", "end"], ["grimpe", 0, 1]],
        "climb1_profile": [["label", "start", "end"], ["lecture", 2, 3]]})
    segs, where = read(path, names=["climb1_profile", "c1p", "c1p.mp4"])
    assert segs == [Segment("reading", 2.0, 3.0, 2)] and where.endswith("sheet 'climb1_profile'")
    assert read(path, names=["climb1_face"])[0] == [Segment("climbing", 0.0, 1.0, 2)]
    assert read(path, names=["anything"], sheet="climb1_profile")[0] == [Segment("reading", 2.0, 3.0, 2)]


def test_one_workbook_with_a_video_column(tmp_path):
    path = write_sheet(tmp_path / "all.ods", [["Vidéo", "Action", "Début", "Fin"], ["climb1_face.mp4", "grimpe", 0, 1],
                                              ["climb2_face", "lecture", 2, 3], ["CLIMB1_FACE", "chrono", 4, 5]])
    assert read(path, names=["climb1_face"])[0] == [Segment("climbing", 0.0, 1.0, 2), Segment("stopwatch", 4.0, 5.0, 4)]
    assert read(path, names=["climb2_face"])[0] == [Segment("reading", 2.0, 3.0, 3)]


# --- errors: each names the file, sheet, row and column, and says what was expected -----------------------------

def error_of(path, **kw) -> str:
    with pytest.raises(BouldersegError) as e:
        read(path, **kw)
    return str(e.value)


def test_unknown_label(tmp_path):
    path = write_sheet(tmp_path / "bad.xlsx", [["Action", "Début", "Durée"], ["grimpe", 0, 1], ["sauter", 1, 1]])
    assert error_of(path) == (
        f"{path}, sheet 'Feuil1': 1 problem(s):\n  row 3, column 'Action': unknown label 'sauter'. Known: brossage, "
        "brushing, chrono, climbing, grimpe, lecture, nothing, reading, stopwatch. Add it under labels.map in params.yaml.")


def test_unparseable_time_and_non_positive_durations_are_reported_together(tmp_path):
    path = write_sheet(tmp_path / "bad.csv", [["label", "start", "duration"], ["x", 0, 1], ["grimpe", "abc", 1],
                                              ["grimpe", 2, 0], ["grimpe", 3, -1], ["grimpe", "-1", 2], ["", 1, 1]])
    msg = error_of(path)
    assert msg.startswith(f"{path}: 7 problem(s):\n")
    assert msg.splitlines()[1:] == [
        "  row 2, column 'label': unknown label 'x'. Known: brossage, brushing, chrono, climbing, grimpe, lecture, "
        "nothing, reading, stopwatch. Add it under labels.map in params.yaml.",
        "  row 3, column 'start': expected seconds (12.5 or 12,5), mm:ss(.ss) or hh:mm:ss, got 'abc'",
        "  row 4, column 'duration': duration 0 s; expected a positive duration",
        "  row 5, column 'duration': negative time -1 s; expected a time from the video's start",
        "  row 5, column 'duration': duration -1 s; expected a positive duration",
        "  row 6, column 'start': negative time -1 s; expected a time from the video's start",
        "  row 7, column 'label': empty label"]


def test_end_before_start(tmp_path):
    path = write_sheet(tmp_path / "bad.xlsx", [["label", "start", "end"], ["grimpe", "0:05", "0:04"]])
    assert error_of(path).endswith("row 2, column 'end': ends at 4 s, not after its start 5 s; expected a positive duration")


def test_missing_column(tmp_path):
    path = write_sheet(tmp_path / "bad.ods", [["label", "when"], ["grimpe", 0]], sheet="S1")
    assert error_of(path) == (
        f"{path}, sheet 'S1': missing column(s) start, duration or end; found ['label', 'when']. Expected headers like "
        "label/action, start/début, duration/durée or end/fin, or set them under labels.columns in params.yaml.")
    policy = dataclasses.replace(POLICY, columns={"start": "T0"})
    assert error_of(path, policy=policy).startswith(
        f"{path}, sheet 'S1': column 'T0' (labels.columns.start) not found; missing column(s) start, duration or end")


@pytest.mark.parametrize("rows", [[["label", "start", "end"]], []], ids=["header-only", "blank"])
def test_empty_sheet(tmp_path, rows):
    path = write_sheet(tmp_path / "empty.xlsx", rows or [[None]])
    assert error_of(path) == (f"{path}, sheet 'Feuil1': no annotation rows (the sheet is empty or has only a header). "
                              "Expected one row per segment: label, start, and duration or end.")


def test_video_without_annotation_in_a_shared_workbook(tmp_path):
    path = write_sheet(tmp_path / "all.csv", [["video", "label", "start", "end"], ["climb1_face", "grimpe", 0, 1]])
    assert error_of(path, names=["climb2_face"]) == (
        f"{path}: video 'climb2_face' has no annotation: no row names it in column 'video' (found: climb1_face). "
        "Write one of ['climb2_face'] there, or point the video's `annotation` at its own file.")


def test_ambiguous_workbook_and_missing_sheet_and_file(tmp_path):
    path = write_sheets(tmp_path / "all.xlsx", {"a": [["label", "start", "end"]], "b": [["label", "start", "end"]]})
    assert error_of(path, names=["climb1_face"]) == (
        f"{path}: 2 sheets ['a', 'b'], none named after video 'climb1_face' and no video column in sheet 'a'. "
        "Name a sheet after the video, add a 'video' column, or set `sheet:` in its params entry.")
    assert error_of(path, sheet="c") == f"{path}: no sheet 'c' (set in params.yaml videos); sheets: ['a', 'b']."
    csv = write_sheet(tmp_path / "a.csv", [["label", "start", "end"], ["grimpe", 0, 1]])
    assert error_of(csv, sheet="b") == f"{csv}: a .csv has no sheets, but `sheet: b` is set in params.yaml videos."
    missing = tmp_path / "nope.xlsx"
    assert error_of(missing) == (f"{missing}: annotation file not found. "
                                 "Check the `annotation` path in params.yaml videos.")
    (tmp_path / "a.txt").write_text("x")
    assert "unsupported annotation format '.txt'" in error_of(tmp_path / "a.txt")


# --- property: any non-overlapping segments survive a sheet in any format, exactly to the frame ------------------

RAW_LABELS = {"Grimpe": "climbing", " BROSSAGE ": "brushing", "Lécture": "reading", "chrono": "stopwatch",
              "climbing": "climbing", "Reading": "reading"}
EXACT_AT_ANY_FPS = ("seconds", "ms", "hh:mm:ss.sss", "excel time", "frames")
TWO_DECIMALS = ("comma seconds", "mm:ss.ss")  # exact at 25 fps, where frames fall on 1/100 s


def cell(seconds: float, form: str, fps: float, suffix: str):
    if form == "seconds":
        return seconds
    if form == "ms":
        return round(seconds * 1000)
    if form == "frames":
        return round(seconds * fps)
    if form == "comma seconds":
        return f"{seconds:.2f}".replace(".", ",")
    m, s = divmod(seconds, 60)
    if form == "mm:ss.ss":
        return f"{int(m):02d}:{s:05.2f}"
    h, m = divmod(int(m), 60)
    if form == "hh:mm:ss.sss" or suffix == ".csv":
        return f"{h:02d}:{m:02d}:{s:06.3f}"
    return dt.time(h, m, int(s), round((s - int(s)) * 1e6))  # Excel time cell


HEADERS = {"ms": ("Début (ms)", "Durée (ms)", "Fin (ms)"), "frames": ("start_frame", "duration_frames", "end_frame")}


@st.composite
def annotated(draw):
    fps = draw(st.sampled_from([25, 30]))
    form = draw(st.sampled_from(EXACT_AT_ANY_FPS if fps == 30 else EXACT_AT_ANY_FPS + TWO_DECIMALS))
    frame, segments = 0, []
    for _ in range(draw(st.integers(1, 6))):
        lo = frame + draw(st.integers(0, 40))
        frame = lo + draw(st.integers(1, 80))
        segments.append((draw(st.sampled_from(sorted(RAW_LABELS))), lo, frame))
    n_frames = frame + draw(st.integers(0, 30))
    return fps, form, draw(st.booleans()), draw(st.sampled_from(FORMATS)), segments, n_frames


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=annotated())
def test_round_trip_segments_to_sheet_to_frames_is_exact(tmp_path_factory, case):
    fps, form, with_end, suffix, segments, n_frames = case
    start_h, dur_h, end_h = HEADERS.get(form, ("Début", "Durée", "Fin"))
    rows = [["Action", start_h, end_h if with_end else dur_h]]
    for raw, lo, hi in segments:
        stop = hi / fps if with_end else (hi - lo) / fps
        rows.append([raw, cell(lo / fps, form, fps, suffix), cell(stop, form, fps, suffix)])
    path = write_sheet(tmp_path_factory.mktemp("rt") / f"a{suffix}", rows)
    policy = dataclasses.replace(POLICY, label_map=RAW_LABELS, annotation_fps=fps)
    read_back, _ = read_segments(path, policy)
    assert [(s.label, frame_index_at(s.start, fps), frame_index_at(s.end, fps)) for s in read_back] == [
        (RAW_LABELS[raw], lo, hi) for raw, lo, hi in segments]
    expected = ["nothing"] * n_frames
    for raw, lo, hi in segments:
        expected[lo:hi] = [RAW_LABELS[raw]] * (hi - lo)
    assert frame_labels(read_back, n_frames=n_frames, fps=fps, policy=policy) == expected
