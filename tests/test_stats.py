"""Dataset statistics on small cases computed by hand."""
from __future__ import annotations

import pytest

from pipeline.views.stats import dataset_stats, edit_distance, order_variation, repetition_score, runs, temporal_distribution

CLASSES = ["climbing", "brushing", "reading", "nothing"]


def seq(spec: str) -> list[str]:
    """'c2 r1' -> ['climbing', 'climbing', 'reading']."""
    names = {c[0]: c for c in CLASSES}
    return [names[tok[0]] for tok in spec.split() for _ in range(int(tok[1:]))]


def test_runs_are_maximal():
    assert runs(seq("c2 r1 c3")) == [("climbing", 0, 2), ("reading", 2, 3), ("climbing", 3, 6)]
    assert runs([]) == []


def test_repetition_score():
    assert repetition_score(["c", "b", "r"]) == 0.0  # no class twice
    assert repetition_score(["c", "b", "c", "b"]) == 0.5  # 1 - 2/4
    assert repetition_score(["c"] * 10) == pytest.approx(0.9)
    assert repetition_score([]) is None


def test_edit_distance_and_order_variation():
    assert edit_distance("rcb", "rcb") == 0 and edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert order_variation([list("rcb"), list("rcb")]) == 0.0  # same order everywhere
    assert order_variation([list("ab"), list("ba")]) == 1.0  # 2 substitutions / 2
    # pairs: (rcb, rcbc) 1/4, (rcb, bcr) 2/3, (rcbc, bcr) 3/4 -> mean
    assert order_variation([list("rcb"), list("rcbc"), list("bcr")]) == pytest.approx((1 / 4 + 2 / 3 + 3 / 4) / 3)
    assert order_variation([list("ab")]) is None


def test_temporal_distribution_normalises_each_video_to_its_length():
    shares = temporal_distribution({"v1": seq("c2 r2"), "v2": seq("c4 r4")}, CLASSES, bins=2)
    assert shares == {"climbing": [1.0, 0.0], "brushing": [0.0, 0.0], "reading": [0.0, 1.0], "nothing": [0.0, 0.0]}
    shares = temporal_distribution({"v": seq("c1 b1 r2")}, CLASSES, bins=2)
    assert shares["climbing"] == [0.5, 0.0] and shares["brushing"] == [0.5, 0.0] and shares["reading"] == [0.0, 1.0]


def test_dataset_stats_by_hand():
    # fps 2 -> a frame is 0.5 s
    videos = {"v1": seq("n2 c4 b2 c2 r2"), "v2": seq("r2 c6 n4")}
    s = dataset_stats(videos, fps=2, classes=CLASSES, scope=["climbing", "brushing", "reading"], bins=2)
    assert s["videos"] == 2 and s["frames"] == 24 and s["duration_s"] == 12.0
    assert s["classes"]["climbing"] == {"frames": 12, "share": 0.5, "segments": 3,
                                        "mean_duration_s": 2.0, "median_duration_s": 2.0}  # 2, 1, 3 s
    assert s["classes"]["brushing"] == {"frames": 2, "share": 2 / 24, "segments": 1,
                                        "mean_duration_s": 1.0, "median_duration_s": 1.0}
    assert s["classes"]["nothing"]["segments"] == 2 and s["classes"]["nothing"]["mean_duration_s"] == 1.5
    # transcripts without the dropped class: v1 c b c r (4 segments), v2 r c (2)
    # ± is the sample std (ddof 1), as everywhere: |4 - 2| / sqrt(2)
    assert s["segments_per_video"] == {"mean": 3.0, "std": pytest.approx(2 ** 0.5), "per_video": {"v1": 4, "v2": 2}}
    assert s["imbalance_ratio"] == 12 / 2
    assert s["imbalance"] == {"largest": "climbing", "smallest": "brushing", "absent": []}
    assert s["repetition_score"]["per_video"] == {"v1": 0.25, "v2": 0.0}
    assert s["repetition_score"]["mean"] == 0.125 and s["repetition_score"]["std"] == pytest.approx(0.25 / 2 ** 0.5)
    assert s["order_variation"] == 3 / 4  # edit(cbcr, rc) = 3 over max length 4


def test_absent_class_in_scope_is_listed_not_divided_by():
    s = dataset_stats({"v": seq("c3 r1")}, fps=1, classes=CLASSES, scope=["climbing", "brushing", "reading"])
    assert s["imbalance_ratio"] == 3.0 and s["imbalance"]["absent"] == ["brushing"]
    assert s["classes"]["brushing"]["mean_duration_s"] is None
