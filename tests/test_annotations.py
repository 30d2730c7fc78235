from __future__ import annotations

import dataclasses

import pytest
from sheetio import write_sheet

from pipeline.annotations.segments import (LabelPolicy, Segment, clip_to_video, frame_index_at, frame_labels, header_key,
                                  read_segments)
from pipeline.annotations.text import normalize
from pipeline.core.errors import BouldersegError

CLASSES = ("climbing", "brushing", "reading", "stopwatch", "nothing")
MAP = {"grimpe": "climbing", "brossage": "brushing", "lecture": "reading", "chrono": "stopwatch"}
POLICY = LabelPolicy(classes=CLASSES, label_map=MAP, annotation_fps=25)


def labels_of(segments, n=10, fps=10, **policy):
    return frame_labels(segments, n_frames=n, fps=fps, policy=dataclasses.replace(POLICY, **policy))


def test_normalize_and_header_key_ignore_case_accents_spacing_and_units():
    assert normalize("  Début\t ") == "debut" and normalize("DURÉE") == "duree" and normalize("Temps_Fin") == "temps fin"
    assert header_key("Début (ms)") == "debut" and header_key("start_frame") == "start"
    assert header_key("Temps fin [s]") == "temps fin"


def test_frame_index_at_is_exact_on_frame_times_within_a_millisecond():
    assert frame_index_at(2.4, 25) == 60  # even when stored as 2.3999999999999999
    assert frame_index_at(1.2 + 1.2, 25) == 60 and frame_index_at(0.1 + 0.2, 10) == 3
    assert frame_index_at(0.067, 30) == 2  # frame 2 at 30 fps written to the ms (66.67 -> 67 ms)
    assert frame_index_at(0.134, 30) == 4  # start + duration, both rounded up: 67 + 67 ms
    assert frame_index_at(2.402, 25) == 61 and frame_index_at(-1.0, 25) == 0


def test_gaps_get_the_default_label_on_half_open_intervals():
    segs = [Segment("climbing", 0.2, 0.4, 2), Segment("reading", 0.5, 0.7, 3)]
    assert labels_of(segs) == ["nothing"] * 2 + ["climbing"] * 2 + ["nothing"] + ["reading"] * 2 + ["nothing"] * 3
    assert labels_of(segs, default="stopwatch")[0] == "stopwatch"


def test_overlap_later_wins_frame_by_frame_without_shifting_later_frames():
    segs = [Segment("climbing", 0.0, 0.6, 2), Segment("brushing", 0.4, 0.8, 3), Segment("reading", 0.8, 1.0, 4)]
    assert labels_of(segs) == ["climbing"] * 4 + ["brushing"] * 4 + ["reading"] * 2
    # a segment nested in a longer one cuts a hole; the longer one resumes after it
    nested = [Segment("climbing", 0.0, 1.0, 2), Segment("brushing", 0.3, 0.5, 3)]
    assert labels_of(nested) == ["climbing"] * 3 + ["brushing"] * 2 + ["climbing"] * 5
    # rows out of time order: the segment starting later still wins
    assert labels_of([nested[1], nested[0]]) == labels_of(nested)


def test_overlap_priority_first_listed_class_wins():
    segs = [Segment("brushing", 0.0, 0.5, 2), Segment("climbing", 0.3, 0.8, 3)]
    assert labels_of(segs, overlap="priority", priority=("brushing", "climbing")) == (
        ["brushing"] * 5 + ["climbing"] * 3 + ["nothing"] * 2)
    assert labels_of(segs, overlap="priority", priority=("climbing", "brushing")) == (
        ["brushing"] * 3 + ["climbing"] * 5 + ["nothing"] * 2)


def test_overlap_error_names_rows_and_frames_but_touching_segments_are_fine():
    touching = [Segment("climbing", 0.0, 0.4, 2), Segment("reading", 0.4, 0.6, 3)]
    assert labels_of(touching, overlap="error")[3:5] == ["climbing", "reading"]
    segs = [Segment("climbing", 0.0, 0.6, 2), Segment("brushing", 0.4, 0.8, 3), Segment("reading", 0.5, 0.55, 4)]
    with pytest.raises(BouldersegError) as e:
        frame_labels(segs, n_frames=10, fps=10, policy=dataclasses.replace(POLICY, overlap="error"), where="a.xlsx")
    assert str(e.value) == (
        "a.xlsx: 2 overlap(s) and labels.overlap is 'error':\n"
        "  rows 2 and 3 overlap on frames 4-5 (0.4-0.6 s)\n"
        "  rows 3 and 4 overlap on frames 5-5 (0.5-0.6 s)\n"
        "  Fix the sheet, or set labels.overlap to later_wins or priority in params.yaml.")


def test_segments_past_the_video_are_clipped_with_a_warning_naming_them():
    segs = [Segment("climbing", 0.8, 5.0, 2), Segment("reading", 12.0, 13.0, 3), Segment("brushing", -0.5, 0.2, 4),
            Segment("stopwatch", 0.3, 0.5, 5)]
    kept, warnings = clip_to_video(segs, duration=1.0, where="a.xlsx, sheet 'S'")
    assert kept == [Segment("climbing", 0.8, 1.0, 2), Segment("brushing", 0.0, 0.2, 4), Segment("stopwatch", 0.3, 0.5, 5)]
    assert warnings == [
        "a.xlsx, sheet 'S', row 2: segment 'climbing' 0.8-5 s runs past the video (0-1 s); clipped",
        "a.xlsx, sheet 'S', row 3: segment 'reading' 12-13 s lies outside the video (0-1 s); ignored",
        "a.xlsx, sheet 'S', row 4: segment 'brushing' -0.5-0.2 s runs past the video (0-1 s); clipped"]
    assert labels_of(kept) == ["brushing"] * 2 + ["nothing"] + ["stopwatch"] * 2 + ["nothing"] * 3 + ["climbing"] * 2


def test_class_policy_merges_and_maps_case_accent_and_space_insensitively(tmp_path):
    path = write_sheet(tmp_path / "a.xlsx", [["Action", "Début", "Fin"], [" GRIMPE ", 0, 1], ["Chrono", 1, 2],
                                             ["Lécture", 2, 3], ["Nothing", 3, 4]])
    policy = dataclasses.replace(POLICY, merge={"stopwatch": "nothing"})
    segs, _ = read_segments(path, policy)
    assert [s.label for s in segs] == ["climbing", "nothing", "reading", "nothing"]
    assert policy.model_classes == ["climbing", "brushing", "reading", "nothing"]
    assert dataclasses.replace(policy, drop=("nothing",)).model_classes == ["climbing", "brushing", "reading"]


def test_policy_errors_name_the_params_key():
    bad = dataclasses.replace(POLICY, label_map={"x": "jumping"}, drop=("resting",),
                              merge={"brushing": "stopwatch", "stopwatch": "nothing"})
    with pytest.raises(BouldersegError) as e:
        bad.check()
    assert str(e.value) == (
        "params.yaml: 3 problem(s):\n"
        "  labels.map: 'jumping' is not in labels.classes\n"
        "  labels.drop: 'resting' is not in labels.classes\n"
        "  labels.merge: 'brushing' is merged into 'stopwatch', which is itself merged\n"
        f"  Classes: {', '.join(CLASSES)}.")


def test_offset_shifts_sheet_time_to_video_time(tmp_path):
    path = write_sheet(tmp_path / "a.csv", [["label", "start", "duration"], ["grimpe", 1.0, 2.0]])
    segs, _ = read_segments(path, POLICY, offset=-0.5)
    assert segs == [Segment("climbing", 0.5, 2.5, 2)]
