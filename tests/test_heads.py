"""The head registry: every head is padding-invariant and learns; losses and the mode filter by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_train import CLASSES, video

from pipeline.core.errors import BouldersegError
from pipeline.learning.dataset import IGNORE, group_folds
from pipeline.learning.heads import HEADS, build_head
from pipeline.learning.metrics import summarize
from pipeline.learning.train import HeadConfig, Loss, cross_validate, mode_filter, pad, smoothing_loss

SMALL = {"logreg": {"Cs": [0.01, 1.0]}, "linear": {}, "mlp": {"hidden": 16}, "lstm": {"hidden": 16}, "bilstm": {"hidden": 16},
         "mstcn": {"stages": 2, "layers": 4, "channels": 16}, "transformer": {"dim": 16, "heads": 2}}
TRAINING = {"logreg": (None, None), "linear": (100, 0.05), "mlp": (100, 0.01), "lstm": (60, 0.01), "bilstm": (60, 0.01), "mstcn": (60, 0.01),
            "transformer": (60, 0.005)}  # (epochs, lr)


def test_the_registry_covers_the_test_settings():
    assert set(SMALL) == set(TRAINING) == set(HEADS)


@pytest.mark.parametrize("name", HEADS)
def test_a_videos_logits_do_not_depend_on_the_videos_batched_with_it(name):
    torch.manual_seed(0)
    short, long = video("s", "c1", 5, 0), video("l", "c2", 19, 1)
    x, _, lengths = pad([short, long], [np.zeros(5, np.int64), np.zeros(19, np.int64)])
    x[0, 5:] = 1e3  # whatever padding holds never reaches a real window
    head = build_head(name, feature_dim=6, n_classes=3, options=SMALL[name]).eval()
    with torch.no_grad():
        alone, batched = head(x[:1, :5], lengths[:1]), head(x, lengths)[:1, :5]
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", HEADS)
def test_every_head_learns_the_synthetic_task_under_cross_validation(tmp_path, name):
    videos = [video(f"c{c}_{v}", f"c{c}", 12, 10 * c + j) for c in range(3) for j, v in enumerate(("face", "profile"))]
    folds = group_folds({v.name: v.climb for v in videos}, k=3, seed=0)
    epochs, lr = TRAINING[name]
    table = cross_validate(videos, folds, HeadConfig(name, epochs, lr, 0.0, SMALL[name]), classes=CLASSES,
                           min_person_fraction=0.5, seed=0, models_dir=tmp_path)
    accuracy = summarize(table.assign(backbone="b"), CLASSES)["b"][name]["accuracy"]["mean"]
    assert accuracy > 100 / 3 + 30, f"{name}: {accuracy:.1f} %"  # a third of the windows in each class


def test_an_unknown_head_option_names_the_options_the_head_reads():
    with pytest.raises(BouldersegError, match=r"train.heads.lstm.model .*\['hiden'\]; lstm reads hidden, layers"):
        build_head("lstm", feature_dim=6, n_classes=3, options={"hiden": 8})


def test_default_loss_is_plain_cross_entropy_and_focal_gamma_zero_is_the_same():
    torch.manual_seed(0)
    logits, y = torch.randn(10, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, IGNORE, IGNORE, 1])
    plain = torch.nn.functional.cross_entropy(logits, y, ignore_index=IGNORE)
    assert torch.equal(Loss()(logits, y, None), plain)
    # focal with gamma > 0 scales each window's loss by (1 - p_true) ** gamma: by hand
    keep = y != IGNORE
    ce = torch.nn.functional.cross_entropy(logits[keep], y[keep], reduction="none")
    p = torch.softmax(logits[keep], -1).gather(1, y[keep][:, None])[:, 0]
    torch.testing.assert_close(Loss(focal_gamma=2.0)(logits, y, None), ((1 - p) ** 2 * ce).mean())


def test_inverse_frequency_weights_balance_the_classes():
    y = torch.tensor([0, 0, 0, 1, IGNORE, IGNORE])  # three of class 0, one of class 1, none of class 2
    w = Loss(class_weights="inverse_frequency").class_weight(y, 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])  # total / (classes * count); absent classes 0
    assert Loss().class_weight(y, 3) is None


def test_smoothing_loss_ignores_padding():
    logits = torch.zeros(2, 4, 3)
    logits[1, 2:] = torch.tensor([5.0, -5.0, 0.0])  # video 1 is 2 windows long: this jump is padding
    assert smoothing_loss(logits, torch.tensor([4, 2])) == 0
    assert smoothing_loss(logits, torch.tensor([4, 4])) > 0


def test_mode_filter_removes_short_flickers_and_keeps_ties_with_the_frame():
    pred = np.array([0, 0, 0, 1, 0, 0, 2, 2, 2, 2])
    assert mode_filter(pred, 3).tolist() == [0, 0, 0, 0, 0, 0, 2, 2, 2, 2]
    assert mode_filter(pred, 1).tolist() == pred.tolist()
    assert mode_filter(np.array([0, 1]), 5).tolist() == [0, 1]  # one of each in every window: each keeps its own


def test_mode_filter_of_any_width_counts_exactly_that_many_frames():
    # a 2-frame run is half of 4 frames (a tie: it stays) but not of 5; an even width used to count width + 1
    assert mode_filter(np.array([0, 1, 1, 0, 0, 0]), 4).tolist() == [0, 1, 1, 0, 0, 0]
    assert mode_filter(np.array([0, 1, 1, 0, 0, 0]), 5).tolist() == [1, 1, 0, 0, 0, 0]
    rng = np.random.default_rng(0)
    for _ in range(300):
        pred, width = rng.integers(0, 3, int(rng.integers(1, 30))), int(rng.integers(2, 12))
        expected = []
        for i, own in enumerate(pred):  # width // 2 frames before i, (width - 1) // 2 after
            counts = np.bincount(pred[max(i - width // 2, 0): i + (width - 1) // 2 + 1], minlength=3)
            expected.append(own if counts[own] == counts.max() else counts.argmax())
        assert mode_filter(pred, width).tolist() == expected, (pred.tolist(), width)
