"""Choices made from data (logreg's C, nested selection's epochs) see only the training videos; fusions concatenate."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from test_train import CLASSES, video

from pipeline.core.errors import BouldersegError
from pipeline.learning.dataset import fuse, group_folds
from pipeline.learning.heads import build_head
from pipeline.learning.train import HeadConfig, choose_epochs, cross_validate, fit, fit_chosen

LOGREG = HeadConfig("logreg", None, None, 0.0, {"Cs": [0.001, 0.1, 10.0]})
LINEAR = HeadConfig("linear", 40, 0.05, 0.0, {}, select_epochs=(2, 10, 40))


def dataset(seed: int = 0) -> list:
    return [video(f"c{c}_{v}", f"c{c}", 12, seed + 10 * c + j) for c in range(4) for j, v in enumerate(("face", "profile"))]


def folds_of(videos: list) -> dict[str, int]:
    return group_folds({v.name: v.climb for v in videos}, k=4, seed=0)


def chosen(table) -> dict[int, dict]:
    return {int(k): json.loads(df["chosen"].iloc[0]) for k, df in table.groupby("fold")}


@pytest.mark.parametrize("present", [[0, 1, 2], [0, 2], [1]])
def test_logreg_layer_predicts_what_scikit_learn_fitted(present):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = np.array(present)[rng.integers(0, len(present), 60)]
    x[np.arange(60), y] += 2.0
    head = build_head("logreg", feature_dim=5, n_classes=3, options={"Cs": [1.0]})
    head.body.solve(x, y, np.zeros(60), seed=0)  # one climb: no inner split
    with torch.no_grad():
        logits = head.body(torch.from_numpy(x).float()[None], None)[0]
    expected = LogisticRegression(C=1.0, max_iter=1000, random_state=0).fit(x, y).predict(x) if len(present) > 1 else y
    assert logits.argmax(-1).numpy().tolist() == expected.tolist()


@pytest.mark.parametrize("cfg", [LOGREG, LINEAR], ids=["logreg C", "nested epochs"])
def test_a_folds_choice_never_depends_on_its_held_out_videos(tmp_path, cfg):
    videos, select = dataset(), "nested" if cfg is LINEAR else "none"
    folds = folds_of(videos)
    table = cross_validate(videos, folds, cfg, classes=CLASSES, min_person_fraction=0.5, seed=0, models_dir=tmp_path,
                           select=select)
    made = chosen(table)
    assert set(made) == {0, 1, 2, 3} and all(("C" if cfg is LOGREG else "epochs") in m for m in made.values())
    assert len(made[0]["inner_accuracy"]) == 3  # each of the 3 candidates scored on inner splits of its climbs
    # scramble fold 0's held-out videos: the other folds train on them and may choose differently, fold 0 may not
    scrambled = [replace(v, features=np.random.default_rng(1).normal(size=v.features.shape).astype(np.float32))
                 if folds[v.name] == 0 else v for v in videos]
    again = cross_validate(scrambled, folds, cfg, classes=CLASSES, min_person_fraction=0.5, seed=0,
                           models_dir=tmp_path, select=select)
    assert chosen(again)[0] == made[0]
    assert (again[again["fold"] == 0]["pred"] != table[table["fold"] == 0]["pred"]).any()  # its predictions did change


def test_one_run_scores_every_epoch_choice_as_separate_runs_would():
    videos = dataset()[:6]
    seen = {}
    fit(replace(LINEAR, epochs=10), videos, n_classes=3, min_person_fraction=0.5, seed=3,
        on_epoch=lambda e, h: seen.setdefault(e, {k: v.clone() for k, v in h.state_dict().items()}))
    alone = fit(replace(LINEAR, epochs=4), videos, n_classes=3, min_person_fraction=0.5, seed=3).state_dict()
    assert sorted(seen) == list(range(1, 11))
    for k, v in alone.items():
        torch.testing.assert_close(seen[4][k], v, rtol=0, atol=0)


def test_nested_selection_prefers_training_long_enough_and_records_the_scores():
    made = choose_epochs(replace(LINEAR, lr=0.002), dataset(), inner_folds=3, n_classes=3, min_person_fraction=0.5,
                         seed=0)
    scores = {int(e): a for e, a in made["inner_accuracy"].items()}
    assert sorted(scores) == [2, 10, 40] and made["epochs"] == max(scores, key=lambda e: (scores[e], -e))
    assert scores[40] > scores[2]  # a slow learner: two epochs are not enough, and the inner splits see it
    one_climb = [v for v in dataset() if v.climb == "c0"]
    assert choose_epochs(LINEAR, one_climb, inner_folds=3, n_classes=3, min_person_fraction=0.5, seed=0) == {
        "epochs": 40, "inner_accuracy": {}}


def test_fusion_concatenates_each_windows_features_and_refuses_other_windows():
    a, b = video("v", "c", 5, 0), video("v", "c", 5, 1)
    fused = fuse([a, b])
    assert fused.features.shape == (5, 12)
    np.testing.assert_array_equal(fused.features[:, 6:], b.features)
    with pytest.raises(BouldersegError, match="cut different windows"):
        fuse([a, video("v", "c", 4, 1)])


def test_nested_selection_without_candidates_says_which_params_to_add():
    with pytest.raises(BouldersegError, match=r"train.heads.linear in params.yaml lists no select_epochs"):
        choose_epochs(replace(LINEAR, select_epochs=()), dataset(), inner_folds=3, n_classes=3,
                      min_person_fraction=0.5, seed=0)


@pytest.mark.parametrize(("fusions", "problem"), [
    ([["efficientnet_lite0", "efficientnet_lite0"]], "fuses a backbone with itself"),
    ([["efficientnet_lite0", "blazepose"], ["blazepose", "efficientnet_lite0"]], "listed twice (in either order)"),
    ([["efficientnet_lite0", "x3d_xs"]], "x3d_xs not listed under features.backbones"),
    ([["efficientnet_lite0"]], "at least 2 items"),
])
def test_a_fusion_names_two_distinct_listed_backbones_once(tmp_path, fusions, problem):
    from test_params import problems_of

    lines = problems_of(tmp_path, lambda p: p["train"].update(fusions=fusions))
    assert len(lines) == 1 and problem in lines[0]


def test_predict_refuses_a_store_smoothed_otherwise_than_the_bundles_training_features(tmp_path):
    from pipeline.learning import bundle

    plain = {k: 1 for k in bundle.CHECKED} | {"frame_heights": [256]}
    meta = {"backbone": {"backbone": "efficientnet_lite0+blazepose", "members": [plain, plain | {"pose_smoothing": "savgol"}]}}
    store = {k: 1 for k in bundle.CHECKED} | {"frame_height": 256}
    bundle.check_store(meta, store, store_path=tmp_path / "a.zarr", bundle_dir=tmp_path, member=0)
    bundle.check_store(meta, store | {"pose_smoothing": "savgol"}, store_path=tmp_path / "b.zarr", bundle_dir=tmp_path,
                       member=1)
    with pytest.raises(BouldersegError, match="pose_smoothing: the store has None, the bundle 'savgol'"):
        bundle.check_store(meta, store, store_path=tmp_path / "b.zarr", bundle_dir=tmp_path, member=1)
    with pytest.raises(BouldersegError, match="pose_smoothing: the store has 'savgol', the bundle None"):
        bundle.check_store(meta, store | {"pose_smoothing": "savgol"}, store_path=tmp_path / "a.zarr",
                           bundle_dir=tmp_path, member=0)


def test_nested_selection_with_no_inner_split_to_learn_from_keeps_the_configured_epochs():
    nobody = [replace(v, frame_person=np.zeros_like(v.frame_person)) for v in dataset()]
    assert choose_epochs(LINEAR, nobody, inner_folds=3, n_classes=3, min_person_fraction=0.5, seed=0) == {
        "epochs": 40, "inner_accuracy": {}}


def test_logreg_chooses_on_at_most_train_inner_folds_splits():
    head = fit_chosen(LOGREG, dataset(), select="none", inner_folds=2, n_classes=3, min_person_fraction=0.5, seed=0)
    assert head.chosen["splits"] == 2 and len(head.chosen["inner_accuracy"]) == 3
