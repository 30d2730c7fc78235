"""Choices made from data (logreg's C, nested selection's epochs) see only the training videos; fusions concatenate."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from test_train import CLASSES, video

from pipeline.core.errors import BouldersegError
from pipeline.learning.dataset import IGNORE, fuse, group_folds
from pipeline.learning.heads import build_head
from pipeline.learning.train import HeadConfig, Loss, choose_epochs, cross_validate, fit, fit_chosen

LOGREG = HeadConfig("logreg", None, None, 0.0, {"Cs": [0.001, 0.1, 10.0]})
LINEAR = HeadConfig("linear", 40, 0.05, 0.0, {}, select_epochs=(2, 10, 40))


def dataset(seed: int = 0) -> list:
    return [video(f"c{c}_{v}", f"c{c}", 12, seed + 10 * c + j) for c in range(4) for j, v in enumerate(("face", "profile"))]


def folds_of(videos: list) -> dict[str, int]:
    return group_folds({v.name: v.climb for v in videos}, k=4, seed=0)


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


def scrambled(videos: list, held_out: set[str], seed: int) -> list:
    """`videos` with the held-out ones' features, labels (dropped classes too) and person mask replaced by noise."""
    rng, out = np.random.default_rng(seed), []
    for v in videos:
        if v.name in held_out:
            labels = rng.choice([0, 1, 2, IGNORE], len(v.frame_labels), p=[0.5, 0.2, 0.2, 0.1])
            v = replace(v, features=rng.normal(size=v.features.shape).astype(np.float32), frame_labels=labels,
                        label_names=np.array([CLASSES[c] if c != IGNORE else "nothing" for c in labels]),
                        frame_person=rng.random(len(labels)) < 0.7)
        out.append(v)
    return out


def fitted(models_dir) -> dict[int, dict]:
    """Each fold's fitted state as cross_validate saved it: state_dict (the scaler's mean and std, the body's
    parameters), the loss's class weights, and what it chose."""
    return {int(p.stem.removeprefix("fold")): torch.load(p, weights_only=False) for p in models_dir.glob("fold*.pt")}


def moved(a: dict, b: dict) -> list[str]:
    """What differs, bit for bit, between two fitted states of one fold: the scaler (state_dict's mean and std), a
    body parameter, the class weights, the choice."""
    names, state = {"mean": "scaler mean", "std": "scaler std"}, (a["state_dict"], b["state_dict"])
    out = [names.get(k, f"parameter {k}") for k in state[0] if not torch.equal(state[0][k], state[1][k])]
    weights = a["class_weight"], b["class_weight"]
    if (weights[0] is None) != (weights[1] is None) or (weights[0] is not None and not torch.equal(*weights)):
        out.append("class weights")
    return out + (["chosen"] if a["chosen"] != b["chosen"] else [])


LSTM = HeadConfig("lstm", 5, 0.01, 0.0, {"hidden": 8})
NESTED = replace(LINEAR, epochs=10, select_epochs=(2, 5, 10))


@pytest.mark.parametrize(("cfg", "select"), [(LOGREG, "none"), (NESTED, "nested"), (LSTM, "none")],
                         ids=["logreg C", "linear nested epochs", "lstm"])
def test_no_folds_fitted_state_depends_on_its_held_out_videos(tmp_path, cfg, select):
    """For each fold: scramble its held-out videos' features, labels and person mask and cross-validate again; the
    fold's scaler, class weights, parameters and choices must not move by a bit (a scaler fitted on every video, or
    class weights counted on held-out labels, would move them), while the folds that train on them do move."""
    videos = dataset()
    videos[0] = replace(videos[0], frame_labels=np.zeros_like(videos[0].frame_labels),  # unequal class weights
                        label_names=np.full(len(videos[0].label_names), CLASSES[0]))
    folds, loss = folds_of(videos), Loss(class_weights="inverse_frequency")
    run = dict(classes=CLASSES, min_person_fraction=0.5, seed=0, loss=loss, select=select)
    (tmp_path / "real").mkdir()
    table = cross_validate(videos, folds, cfg, models_dir=tmp_path / "real", **run)
    real = fitted(tmp_path / "real")
    assert sorted(real) == [0, 1, 2, 3]
    for k in real:
        held = {v for v, f in folds.items() if f == k}
        (tmp_path / f"scrambled{k}").mkdir()
        again = cross_validate(scrambled(videos, held, seed=k + 1), folds, cfg,
                               models_dir=tmp_path / f"scrambled{k}", **run)
        other = fitted(tmp_path / f"scrambled{k}")
        changed = moved(real[k], other[k])
        assert not changed, f"fold {k}'s {', '.join(changed)} moved when its held-out videos were scrambled"
        assert any(moved(real[j], other[j]) for j in real if j != k)  # the folds that train on them do move
        assert (again[again["fold"] == k]["pred"].to_numpy() != table[table["fold"] == k]["pred"].to_numpy()).any()
    if cfg is LSTM:
        assert real[0]["chosen"] == {}
    else:  # C or epochs, each of the 3 candidates scored on inner splits of the fold's own climbs
        assert ("C" if cfg is LOGREG else "epochs") in real[0]["chosen"]
        assert len(real[0]["chosen"]["inner_accuracy"]) == 3
    if cfg is not LOGREG:  # a solved head takes no loss
        assert len(set(real[0]["class_weight"].tolist())) > 1


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


def test_logreg_chooses_as_scikit_learns_own_grid_search_on_one_blas_thread_and_says_each_c():
    """The smoke profile's size (186 windows of 2048 features, 4 classes, 3 climbs): the choice and the inner
    accuracies are GridSearchCV's over the same climb-grouped splits; the solve ran BLAS on one thread."""
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_info, threadpool_limits

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 186)
    x = rng.normal(size=(4, 2048))[y] * 0.05 + rng.normal(size=(186, 32)) @ rng.normal(size=(32, 2048))  # correlated
    groups = np.repeat(np.arange(3), 62)
    Cs = [0.001, 0.01, 0.1, 1.0]
    head = build_head("logreg", feature_dim=2048, n_classes=4, options={"Cs": Cs})
    heard, threads = [], []

    def say(line: str) -> None:
        heard.append(line)
        threads.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    chosen = head.body.solve(x, y, groups, seed=0, say=say)
    with threadpool_limits(1):
        search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0)),
                              {"logisticregression__C": Cs}, cv=list(GroupKFold(3).split(x, y, groups))).fit(x, y)
    assert chosen["C"] == search.best_params_["logisticregression__C"]
    assert chosen["inner_accuracy"] == {str(c): round(100 * a, 2) for c, a in zip(Cs, search.cv_results_["mean_test_score"])}
    assert [line.split(":")[0] for line in heard] == [f"C={c:g}" for c in Cs] and set(threads) == {1}
