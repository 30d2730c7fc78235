"""Every metric against cases computed by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.learning.metrics import (edit_score, frame_metrics, not_scored_note, overlap_counts, score,
                                       segment_metrics, segments, shown, summarize)

A, B = "a", "b"
TRUTH = [A] * 10 + [B] * 10
FRAGMENTED = list(TRUTH)
for i in (2, 5, 12, 15):
    FRAGMENTED[i] = B if FRAGMENTED[i] == A else A  # 80 % of frames right, in 10 segments instead of 2


def test_frame_metrics_accuracy_per_class_and_macro_f1():
    m = frame_metrics([A, A, B, B], [A, B, B, B], [A, B, "c"])
    assert m["accuracy"] == 75.0 and m["frames"] == 4
    assert m["per_class_accuracy"] == {A: 50.0, B: 100.0, "c": None}
    assert m["macro_f1"] == pytest.approx(100 * (2 / 3 + 4 / 5) / 2)  # c occurs nowhere: not averaged


def test_segments_are_runs_and_background_frames_split_them():
    assert segments([A, A, B, B, A]) == [(A, 0, 2), (B, 2, 4), (A, 4, 5)]
    assert segments([A, A, A, A, B], [True, True, False, True, True]) == [(A, 0, 2), (A, 3, 4), (B, 4, 5)]
    assert segments([], []) == []


def test_a_fragmented_prediction_has_high_accuracy_but_low_edit_and_f1():
    truth, pred = segments(TRUTH), segments(FRAGMENTED)
    assert frame_metrics(TRUTH, FRAGMENTED, [A, B])["accuracy"] == 80.0
    assert len(pred) == 10 and edit_score(truth, pred) == pytest.approx(20.0)  # 8 insertions over 10
    # @10: a(0,2) IoU .2 and b(10,12) IoU .2 hit; every later same-label segment finds its truth taken
    assert overlap_counts(truth, pred, 0.10) == (2, 8, 0)
    # @25: only a(6,10) and b(16,20), IoU .4 each
    assert overlap_counts(truth, pred, 0.25) == (2, 8, 0)
    assert overlap_counts(truth, pred, 0.50) == (0, 10, 2)
    m = segment_metrics([(truth, pred)])
    assert m == pytest.approx({"edit": 20.0, "f1@10": 100 / 3, "f1@25": 100 / 3, "f1@50": 0.0})


def test_a_single_segment_video_predicted_right_scores_100_everywhere():
    one = segments([A] * 5)
    assert segment_metrics([(one, one)]) == {"edit": 100.0, "f1@10": 100.0, "f1@25": 100.0, "f1@50": 100.0}


def test_an_empty_prediction_scores_zero_and_two_empty_sequences_agree():
    truth = segments([A, A, B, B])
    assert segment_metrics([(truth, [])]) == {"edit": 0.0, "f1@10": 0.0, "f1@25": 0.0, "f1@50": 0.0}
    assert overlap_counts(truth, [], 0.5) == (0, 0, 2)
    assert edit_score([], []) == 100.0


def test_an_ignored_class_forms_no_segment():
    truth = segments([A, A, "x", "x", B], [True, True, False, False, True])
    pred = segments([A, A, A, B, B])
    assert truth == [(A, 0, 2), (B, 4, 5)]
    # a: IoU 2/3, b: IoU 1/2: both hit at 50 %
    assert segment_metrics([(truth, pred)]) == {"edit": 100.0, "f1@10": 100.0, "f1@25": 100.0, "f1@50": 100.0}


def test_f1_sums_counts_over_videos_and_edit_averages_them():
    good = (segments([A, B]), segments([A, B]))
    bad = (segments([A, A]), segments([B, B]))  # label never matches: 1 FP, 1 FN
    m = segment_metrics([good, bad])
    assert m["edit"] == 50.0  # (100 + 0) / 2
    assert m["f1@50"] == pytest.approx(100 * 2 / 3)  # TP 2, FP 1, FN 1: P = R = 2/3


def test_score_and_summarize_count_only_scored_frames_per_fold():
    def video(name, fold, labels, preds, scored):
        return pd.DataFrame({"backbone": "bb", "head": "h", "fold": fold, "video": name, "frame": range(len(labels)),
                             "label": labels, "pred": preds, "scored": scored, "person": scored})
    table = pd.concat([video("v1", 0, [A, A, B, B], [A, A, B, B], [True] * 4),
                       video("v2", 1, [A, A, B, B], [B, A, B, B], [False, True, True, True])], ignore_index=True)
    assert score(table[table["fold"] == 1], [A, B])["accuracy"] == 100.0  # the wrong frame shows nobody
    m = summarize(table, [A, B])["bb"]["h"]
    assert m["accuracy"] == {"mean": 100.0, "std": 0.0} and m["edit"]["mean"] == 100.0
    assert m["std"] == "sample standard deviation over folds (ddof 1)"
    assert m["confusion"] == [[3, 0], [0, 4]] and [f["fold"] for f in m["folds"]] == [0, 1]


def one_video(labels, preds, *, dropped=(), person=None) -> pd.DataFrame:
    """A prediction table of one video; `scored` as the train stage sets it: a person, and a kept class."""
    person = [True] * len(labels) if person is None else person
    scored = [p and label not in dropped for label, p in zip(labels, person)]
    return pd.DataFrame({"video": "v", "frame": range(len(labels)), "label": labels, "pred": preds,
                         "scored": scored, "person": person})


def test_the_truths_dropped_classes_never_cut_the_prediction():
    # the example, paper protocol: climbing x10 | nothing x10 | climbing x10, predicted climbing x30
    table = one_video(["climbing"] * 10 + ["nothing"] * 10 + ["climbing"] * 10, ["climbing"] * 30,
                      dropped=("nothing",))
    m = score(table, ["climbing"])
    assert m["accuracy"] == 100.0  # the 20 scored frames are right
    # one predicted segment against two true ones: Edit 1 - 1/2; IoU 10/30 with either: TP 1, FP 0, FN 1
    assert m["edit"] == 50.0
    assert m["f1@10"] == pytest.approx(100 * 2 / 3) and m["f1@25"] == pytest.approx(100 * 2 / 3)
    assert m["f1@50"] == 0.0


def test_a_case_where_cutting_the_prediction_at_the_truth_changed_f1():
    labels = [A] * 8 + ["x"] * 4 + [B] * 8  # x dropped
    preds = [A] * 14 + [B] * 6
    m = score(one_video(labels, preds, dropped=("x",)), [A, B])
    # honest: a[0,14) vs a[0,8): IoU 8/14 = .57; b[14,20) vs b[12,20): IoU 6/8 = .75: both hit at 50 %
    assert m["f1@50"] == 100.0 and m["edit"] == 100.0
    # what cutting the prediction at the truth's dropped frames gave: a[0,8), a[12,14), b[14,20): an extra
    # a segment (FP: its truth is taken), TP 2, FP 1, FN 0: F1 = 2PR / (P + R) with P = 2/3, R = 1
    cut = segments(preds, one_video(labels, preds, dropped=("x",))["scored"])
    assert cut == [(A, 0, 8), (A, 12, 14), (B, 14, 20)]
    assert segment_metrics([(segments(labels, [c != "x" for c in labels]), cut)])["f1@50"] == pytest.approx(80.0)


def test_frames_the_person_filter_removed_are_background_in_the_prediction_too():
    person = [True] * 10 + [False] * 2 + [True] * 8
    m = score(one_video([A] * 20, [A] * 20, person=person), [A])
    assert m["edit"] == 100.0 and m["f1@50"] == 100.0  # both split at the same frames: 2 segments each


def test_a_video_whose_every_frame_the_person_filter_removed_is_not_scored():
    seen = one_video([A] * 10 + [B] * 10, [A] * 20).assign(video="seen")  # Edit 50: one segment against two
    nobody = one_video([A] * 6, [A] * 6, person=[False] * 6).assign(video="nobody")  # two empty lists: "Edit 100"
    m = score(pd.concat([seen, nobody], ignore_index=True), [A, B])
    assert m["edit"] == 50.0 and m["accuracy"] == 50.0 and m["not_scored"] == ["nobody"]
    assert "not_scored" not in score(seen, [A, B])


def test_a_fold_with_nothing_scored_has_no_figure_and_is_left_out_of_the_means():
    def fold(k, name, labels, preds, person):
        return one_video(labels, preds, person=person).assign(backbone="bb", head="h", fold=k, video=name)
    table = pd.concat([fold(0, "v0", [A, A, B, B], [A, A, B, B], [True] * 4),
                       fold(1, "v1", [A, A, B, B], [A, B, B, A], [True] * 4),
                       fold(2, "gone", [A, A, B, B], [A, A, A, A], [False] * 4)], ignore_index=True)
    m = summarize(table, [A, B])["bb"]["h"]
    empty = m["folds"][2]
    assert empty["fold"] == 2 and empty["not_scored"] == ["gone"] and empty["frames"] == 0
    assert all(empty[k] is None for k in ("accuracy", "macro_f1", "edit", "f1@10", "f1@25", "f1@50"))
    assert m["accuracy"] == {"mean": 75.0, "std": pytest.approx(25 * 2 ** 0.5)}  # folds 0 and 1 only, not 0.0 in it
    assert m["edit"]["mean"] == pytest.approx((100 + 200 / 3) / 2) and m["pooled_accuracy"] == 75.0
    assert m["not_scored"] == {"videos": ["gone"], "folds": [2]}
    assert not_scored_note(m) == ("not scored: gone (nothing to score or predict: the person filter removed "
                                  "every frame, or every frame's class is dropped there); fold 2 scored nothing; in no figure or mean")
    nothing = summarize(table[table["fold"] == 2], [A, B])["bb"]["h"]
    assert nothing["accuracy"] == {"mean": None, "std": None} and nothing["pooled_accuracy"] is None
    assert shown(nothing["accuracy"]["mean"]) == "not scored" and shown(75.0, 2.5, " %") == "75.0 ± 2.5 %"
