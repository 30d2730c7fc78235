from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from pipeline.core.errors import BouldersegError
from pipeline.learning.dataset import IGNORE, VideoData, group_folds, nearest_window
from pipeline.learning.heads import build_head
from pipeline.learning.metrics import confusion, frame_metrics, summarize
from pipeline.learning.train import HeadConfig, cross_validate, fit, pad

CLASSES = ["a", "b", "c"]


def video(name: str, climb: str, n_windows: int, seed: int) -> VideoData:
    """Windows of 8 frames, stride 8; class = window index mod 3, visible in feature 0..2."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_windows) % 3
    feats = rng.normal(0, 0.3, (n_windows, 6)).astype(np.float32)
    feats[np.arange(n_windows), labels] += 2.0
    ranges = np.stack([np.arange(n_windows) * 8, np.arange(n_windows) * 8 + 8], 1).astype(np.int32)
    frames = np.repeat(labels, 8)
    return VideoData(name, climb, feats, ranges, frames, np.ones(8 * n_windows, bool), np.array(CLASSES)[frames])


def test_folds_never_split_a_climb_and_are_seeded():
    groups = {f"c{c}_{v}": f"c{c}" for c in range(5) for v in ("face", "profile")}
    folds = group_folds(groups, k=3, seed=0)
    for c in range(5):
        assert folds[f"c{c}_face"] == folds[f"c{c}_profile"]
    assert sorted(np.bincount(list(folds.values()))) == [2, 4, 4]
    assert group_folds(groups, k=3, seed=0) == folds
    with pytest.raises(BouldersegError, match="train.folds is 6 but there are 5 climbs"):
        group_folds(groups, k=6, seed=0)


def test_window_targets_are_the_majority_of_scored_frames():
    # 8 personless frames of class 0 and 8 person frames of class 1: the target is 1, not 0
    labels, person = np.array([0] * 8 + [1] * 8), np.array([False] * 8 + [True] * 8)
    v = VideoData("v", "c", np.zeros((1, 1), np.float32), np.array([[0, 16]], np.int32), labels, person,
                  np.array(["x"] * 16))
    assert v.window_targets(n_classes=3, min_person_fraction=0.5).tolist() == [1]
    assert v.window_targets(n_classes=3, min_person_fraction=0.6).tolist() == [IGNORE]  # too few person frames


def test_window_targets_ties_go_to_the_lower_class():
    v = VideoData("v", "c", np.zeros((2, 1), np.float32), np.array([[0, 4], [4, 8]], np.int32),
                  np.array([0, 1, 1, 1, 2, 2, 0, 0]), np.array([1, 1, 1, 1, 1, 1, 1, 0], bool), np.array(["x"] * 8))
    assert v.window_targets(n_classes=3, min_person_fraction=0.5).tolist() == [1, 2]  # window 1 scores 2, 2, 0


def test_dropped_class_frames_are_neither_targets_nor_scored():
    v = VideoData("v", "c", np.zeros((2, 1), np.float32), np.array([[0, 4], [4, 8]], np.int32),
                  np.array([IGNORE, IGNORE, IGNORE, 2, IGNORE] * 1 + [IGNORE] * 3), np.ones(8, bool),
                  np.array(["nothing"] * 3 + ["reading"] + ["nothing"] * 4))
    # window 0 has one scored frame (reading wins though dropped frames are the majority); window 1 has none
    assert v.window_targets(n_classes=3, min_person_fraction=0.5).tolist() == [2, IGNORE]
    assert v.scored.tolist() == [False, False, False, True] + [False] * 4


def test_owner_is_nearest_window_centre():
    v = VideoData("v", "c", np.zeros((3, 1), np.float32), np.array([[0, 4], [2, 6], [4, 8]], np.int32),
                  np.zeros(8, np.int64), np.ones(8, bool), np.array(["x"] * 8))
    assert v.owner.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]  # centres 1.5, 3.5, 5.5


def test_nearest_window_is_the_brute_force_argmin_on_random_windows_with_ties_and_edges():
    def brute(frame_range: np.ndarray, n: int) -> np.ndarray:  # the N x W distance matrix it replaced
        centres = (frame_range[:, 0] + frame_range[:, 1] - 1) / 2
        return np.abs(np.arange(n)[:, None] - centres[None, :]).argmin(axis=1)

    rng = np.random.default_rng(0)
    for _ in range(2000):
        w = int(rng.integers(1, 12))
        starts = np.sort(rng.integers(0, 40, w))  # repeated starts: windows sharing a centre
        ends = np.maximum.accumulate(starts + rng.integers(1, 20, w))  # odd and even lengths: frame and midpoint ties
        frame_range = np.stack([starts, ends], 1).astype(np.int32)
        n = int(rng.integers(0, 80))  # frames before the first centre, past the last window, or fewer than windows
        expected = brute(frame_range, n)
        got = nearest_window(frame_range, n)
        assert got.dtype == expected.dtype and got.tolist() == expected.tolist(), (frame_range.tolist(), n)
    assert nearest_window(np.array([[0, 4], [0, 4], [4, 8]], np.int32), 8).tolist() == [0, 0, 0, 0, 2, 2, 2, 2]


def test_padding_is_ignored_and_never_changes_lstm_outputs():
    short, long = video("s", "c1", 3, 0), video("l", "c2", 7, 1)
    x, y, lengths = pad([short, long], [np.zeros(3, np.int64), np.zeros(7, np.int64)])
    assert x.shape == (2, 7, 6) and (y[0, 3:] == IGNORE).all() and lengths.tolist() == [3, 7]
    head = build_head("lstm", feature_dim=6, n_classes=3, options={"hidden": 8}).eval()
    alone = head(x[:1, :3], lengths[:1])
    batched = head(x, lengths)[:1, :3]
    torch.testing.assert_close(alone, batched)


def test_training_is_seeded():
    train = [video(f"v{i}", f"c{i}", 12, i) for i in range(4)]
    cfg = HeadConfig("lstm", epochs=60, lr=0.01, weight_decay=0.0, model={"hidden": 16})
    a = fit(cfg, train, n_classes=3, min_person_fraction=0.5, seed=0)
    b = fit(cfg, train, n_classes=3, min_person_fraction=0.5, seed=0)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name, batch, steps_per_epoch", [
    ("lstm", None, 1), ("lstm", 2, 3), ("lstm", 9, 1),  # 5 videos
    ("linear", None, 1), ("linear", 16, 4), ("linear", 60, 1),  # 5 × 12 windows, one without a person
])
def test_mini_batches_of_videos_or_windows(name, batch, steps_per_epoch):
    train = [video(f"v{i}", f"c{i}", 12, i) for i in range(5)]
    train[0].frame_person[:8] = False  # window 0 of v0 carries no loss, so a window head trains on 59
    steps = []
    hook = register_optimizer_step_post_hook(lambda *_: steps.append(1))
    try:
        cfg = HeadConfig(name, 3, 0.01, 0.0, {"hidden": 16} if name == "lstm" else {}, batch)
        head = fit(cfg, train, n_classes=3, min_person_fraction=0.5, seed=0)
    finally:
        hook.remove()
    assert len(steps) == 3 * steps_per_epoch
    whole = fit(HeadConfig(name, 3, 0.01, 0.0, cfg.model), train, n_classes=3, min_person_fraction=0.5, seed=0)
    same = [torch.equal(a, b) for a, b in zip(head.parameters(), whole.parameters())]
    assert all(same) == (steps_per_epoch == 1)  # a batch as large as the data is the full batch


def test_cross_validation_predicts_every_frame_of_held_out_climbs(tmp_path):
    videos = [video(f"c{c}_{v}", f"c{c}", 9, 10 * c + j) for c in range(3) for j, v in enumerate(("face", "profile"))]
    folds = group_folds({v.name: v.climb for v in videos}, k=3, seed=0)
    for cfg in (HeadConfig("linear", 100, 0.05, 0.0, {}), HeadConfig("lstm", 60, 0.01, 0.0, {"hidden": 16})):
        (tmp_path / cfg.name).mkdir()
        table = cross_validate(videos, folds, cfg, classes=CLASSES, min_person_fraction=0.5, seed=0,
                               models_dir=tmp_path / cfg.name, mode_window=3)
        assert len(table) == 6 * 72 and set(table["head"]) == {cfg.name}
        assert sorted(p.name for p in (tmp_path / cfg.name).iterdir()) == ["fold0.pt", "fold1.pt", "fold2.pt"]
        for vid, df in table.groupby("video"):
            assert df["fold"].nunique() == 1 and df["fold"].iloc[0] == folds[vid]
        assert "pred_mode" in table
        accuracy = summarize(table.assign(backbone="b"), CLASSES)["b"][cfg.name]["accuracy"]["mean"]
        assert accuracy > (95 if cfg.name == "linear" else 90)


def test_a_fold_whose_training_videos_show_nobody_says_so(tmp_path):
    """The person filter dropped every frame of a fold's training videos: a message, not an empty-tensor crash."""
    videos = [video(f"c{c}_face", f"c{c}", 9, c) for c in range(2)]
    empty = videos[0]
    videos[0] = VideoData(empty.name, empty.climb, empty.features, empty.frame_range, empty.frame_labels,
                          np.zeros_like(empty.frame_person), empty.label_names)
    with pytest.raises(BouldersegError, match=r"fold 0: no window of its training videos \(c0_face\) has the share "
                                              r"of person frames train.min_person_fraction asks \(0.5\)"):
        cross_validate(videos, {"c0_face": 1, "c1_face": 0}, HeadConfig("linear", 1, 0.05, 0.0, {}), classes=CLASSES,
                       min_person_fraction=0.5, seed=0, models_dir=tmp_path)


def test_metrics_by_hand():
    labels, preds = ["a", "a", "b", "b", "b", "c"], ["a", "b", "b", "b", "a", "c"]
    assert confusion(labels, preds, CLASSES).tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    m = frame_metrics(labels, preds, CLASSES + ["d"])
    assert m["accuracy"] == pytest.approx(400 / 6)
    assert m["per_class_accuracy"] == {"a": 50.0, "b": pytest.approx(200 / 3), "c": 100.0, "d": None}


def test_summary_scores_only_scored_frames_and_gives_fold_mean_and_pooled_accuracy():
    df = pd.DataFrame({"backbone": "x", "head": "h", "fold": [0, 0, 0, 0, 1, 1], "video": "v", "frame": range(6),
                       "label": ["a", "a", "b", "b", "a", "b"], "pred": ["a", "b", "b", "a", "a", "a"],
                       "scored": [True, True, True, False, True, True], "person": True})
    s = summarize(df, CLASSES)["x"]["h"]
    assert [f["accuracy"] for f in s["folds"]] == [pytest.approx(200 / 3), 50.0]
    # sample std (ddof 1) of two folds: |x1 - x2| / sqrt(2)
    assert s["accuracy"] == {"mean": pytest.approx(700 / 12), "std": pytest.approx((200 / 3 - 50) / 2 ** 0.5)}
    assert s["pooled_accuracy"] == pytest.approx(60.0)
    assert s["per_class_accuracy"]["a"] == {"mean": 75.0, "std": pytest.approx(50 / 2 ** 0.5)}
    assert s["per_class_accuracy"]["b"] == {"mean": 50.0, "std": pytest.approx(100 / 2 ** 0.5)}
    assert s["per_class_accuracy"]["c"] == {"mean": None, "std": None}
