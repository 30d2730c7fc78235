"""The real `dvc repro` of the sample dataset, offline switch on.

One clean run per session; every scenario gets its own `cp -a` copy of it, so no result depends
on test order. Scenarios that rerun the per-video stages of every video use a two-video copy of
the sample: the DAG is the same, the reruns are four times cheaper.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from e2e import (BOULDERSEG, HEADS, PER_VIDEO, SHIPPED_HEADS, SMALL_HEADS, each_video, predictions,
                 prediction_bytes, rows, set_params, sh, stages_run)
from pipeline.annotations.sample import make_video
from pipeline.features import store
from pipeline.features.windows import windows
from pipeline.learning.bundle import load as load_bundle
from pipeline.learning.bundle import predict as predict_frames
from pipeline.learning.dataset import nearest_window

pytestmark = pytest.mark.slow
def test_first_run_builds_every_artifact(full_run):
    root, output = full_run
    params = yaml.safe_load((root / "params.yaml").read_text())
    videos = params["videos"]
    assert params["weights"]["pretrained"] is False
    assert stages_run(output) == set().union(*(each_video(s, videos) for s in PER_VIDEO)) | rows() | {
        "stats", "folds", "evaluate"}
    warm_jobs = re.findall(r"stages\.(?:persons|features|train): run by warm process (\d+)", output)
    assert len(warm_jobs) == 2 * len(videos) + len(HEADS) and len(set(warm_jobs)) == 1  # torch imported once
    kept, shown = [], []
    for name in videos:
        labels = pd.read_csv(root / "data" / "labels" / f"{name}.csv")
        jpgs = sorted((root / "data" / "frames" / name).glob("*.jpg"))
        assert len(labels) == len(jpgs) == 250  # 10 s at 25 fps
        assert labels["frame"].tolist() == list(range(250)) and jpgs[-1].name == "000249.jpg"
        persons = pq.read_table(root / "data" / "persons" / f"{name}.parquet")
        assert persons.num_rows == 250 and persons.schema.metadata[b"detector"] == b"blazepose"
        kept.append(persons["person"].to_numpy())
        shown.append(labels["label"].to_numpy() != params["labels"]["default"])  # nobody in the unannotated gaps
        fs = store.read(root / "features" / "x3d_xs" / f"{name}.zarr")
        assert fs.features.shape == (31, 2048) and fs.features.dtype == np.float16
        assert fs.frame_range.tolist() == windows(250, window=16, stride=8).tolist()
        assert fs.attrs["weights"] == {"pretrained": False, "random_init_seed": 0}
    kept, shown = np.concatenate(kept), np.concatenate(shown)  # BlazePose, shipped weights: a real filter
    # measured 0.97 and 0.39: the sample's empty gaps (0.3–0.8 s) are shorter than persons.max_gap, so bridged (README)
    assert kept[shown].mean() > 0.9 and kept[~shown].mean() < 0.5
    assert sorted(p.name for p in (root / "models" / "x3d_xs" / "lstm").iterdir()) == [
        "bundle.json", "fold0.pt", "fold1.pt", "fold2.pt", "fold3.pt", "head.pt"]
    folds = json.loads((root / "reports" / "folds.json").read_text())
    assert sorted(folds) == [f"fold{k}" for k in range(4)] and sorted(sum(folds.values(), [])) == sorted(videos)
    assert all({f"climb{c}_face", f"climb{c}_profile"} <= set(vs) or not {f"climb{c}_face"} & set(vs)
               for vs in folds.values() for c in range(1, 5))  # both views of a climb in one fold
    metrics = json.loads((root / "reports" / "metrics.json").read_text())["x3d_xs"]
    assert set(metrics) == set(HEADS)
    for m in metrics.values():
        assert len(m["folds"]) == 4 and set(m["per_class_accuracy"]) == set(params["labels"]["classes"])
        assert {"edit", "f1@10", "f1@25", "f1@50", "macro_f1"} <= set(m)
    # the smoke test of learning: even on untrained-backbone features every head beats the majority class
    all_labels = pd.concat(pd.read_csv(p)["label"] for p in (root / "data" / "labels").glob("*.csv"))
    majority = 100 * all_labels.value_counts(normalize=True).iloc[0]  # percent
    assert {h: m["accuracy"]["mean"] for h, m in metrics.items() if m["accuracy"]["mean"] <= majority} == {}
    assert metrics["linear"]["accuracy"]["mean"] > majority + 15
    board = pd.read_csv(root / "reports" / "leaderboard.csv")
    assert set(board[board["source"] == "boulderseg"]["head"]) == set(HEADS)
    paper = board[board["source"] == "paper (Kichou et al., Table 3)"]
    assert len(paper) == 26 and ["r3d", "lstm", 86.8, 3.5] in paper[["backbone", "head", "accuracy",
                                                                       "accuracy_std"]].values.tolist()
    assert "protocol: full: all 5 classes scored" in (root / "reports" / "leaderboard.md").read_text()
    pngs = ["timelines.png", *(f"confusion/x3d_xs/{h}.png" for h in HEADS)]
    assert sorted(str(p.relative_to(root / "reports" / "plots")) for p in (root / "reports" / "plots").rglob("*.png")) \
        == sorted(pngs)
    for png in pngs:
        assert (root / "reports" / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert "reports/metrics.json" in sh("dvc", "metrics", "show", cwd=root)
    dataset = json.loads((root / "reports" / "dataset.json").read_text())
    assert dataset["videos"] == 8 and dataset["frames"] == 8 * 250
    assert sum(c["frames"] for c in dataset["classes"].values()) == len(all_labels)
    assert dataset["classes"]["climbing"]["frames"] == (all_labels == "climbing").sum()
    assert sorted(p.name for p in (root / "reports" / "dataset" / "timelines").iterdir()) == [
        f"{v}.png" for v in sorted(videos)]


def test_metrics_and_plots_are_committed_and_outputs_are_not(full_run):
    root, _ = full_run
    tracked = set(sh("git", "ls-files", cwd=root).split())
    assert {"dvc.lock", "reports/metrics.json", "reports/dataset.json", "reports/plots/confusion/x3d_xs/lstm.png",
            "reports/leaderboard.md", "reports/leaderboard.csv", "reports/folds.json"} <= tracked
    assert not any(f.startswith(("data/frames/", "features/", "models/", "reports/predictions/"))
                   and not f.endswith("/.gitignore") for f in tracked)
    assert sh("git", "status", "--porcelain", cwd=root) == ""


def test_second_repro_runs_no_stage(project):
    assert stages_run(sh("dvc", "repro", cwd=project)) == set()


RUNTIME = {"device": "cpu", "weights_dir": "elsewhere", "frames_workers": 1, "persons_batch": 3,
           "features_batch": 2, "features_workers": 1, "warm_seconds": 0}


def test_run_time_settings_rerun_no_stage(project):
    for key, value in RUNTIME.items():
        set_params(project, lambda p: p["runtime"].update({key: value}))
        assert "Data and pipelines are up to date." in sh("dvc", "status", cwd=project), key
    assert stages_run(sh("dvc", "repro", cwd=project)) == set()


@pytest.mark.parametrize(("key", "value", "reruns", "after", "predictions_change"), [
    # the JPGs change, so the stores are rebuilt and retrained; but the features are cut from the source
    # (features.crop climber) and the persons stage looks at the source too: train writes the same bytes, so no
    # prediction changes and evaluate does not rerun
    ("frames.jpg_quality", 80, ("frames", "persons", "features-pytorchvideo"), {"train"}, False),
    # stats: each video's person share; features: they are cut around the climber's track
    ("persons.conf", 0.7, ("persons", "features-pytorchvideo"), {"stats", "train", "evaluate"}, True),
    ("features.stride", 4, ("features-pytorchvideo",), {"train", "evaluate"}, True),
])
def test_a_per_video_parameter_reruns_that_stage_of_every_video_and_what_follows(small, key, value, reruns, after,
                                                                                   predictions_change):
    section, name = key.split(".")
    set_params(small, lambda p: p[section].update({name: value}))
    videos = ("climb1_face", "climb2_face")
    before = prediction_bytes(small)
    expected = set().union(*(each_video(s, videos) for s in reruns)) | (after - {"train"}) | rows(SMALL_HEADS)
    assert stages_run(sh("dvc", "repro", cwd=small)) == expected
    assert (prediction_bytes(small) != before) == predictions_change


def test_stats_parameter_reruns_only_stats(project):
    set_params(project, lambda p: p["stats"].update(bins=5))
    assert stages_run(sh("dvc", "repro", cwd=project)) == {"stats"}
    assert len(json.loads((project / "reports" / "dataset.json").read_text())["temporal_distribution"]["shares"][
        "climbing"]) == 5


def test_training_param_change_reruns_train_and_evaluate_and_shows_in_metrics_diff(project):
    before = (project / "reports" / "metrics.json").read_text()
    set_params(project, lambda p: p["train"]["heads"]["linear"].update(epochs=50))
    assert stages_run(sh("dvc", "repro", cwd=project)) == rows(["linear"]) | {"evaluate"}  # that row alone
    assert (project / "reports" / "metrics.json").read_text() != before
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-qm", "fewer linear epochs", cwd=project)
    diff = json.loads(sh("dvc", "metrics", "diff", "HEAD~1", "--json", cwd=project))
    changed = diff["reports/metrics.json"]
    assert "x3d_xs.linear.accuracy.mean" in changed and changed["x3d_xs.linear.accuracy.mean"]["diff"] != 0
    assert not any(k.startswith("x3d_xs.lstm.") and v.get("diff") for k, v in changed.items())


def test_one_videos_offset_relabels_only_that_video(project):
    before = pd.read_csv(project / "data" / "labels" / "climb2_face.csv")["label"]
    out = sh("dvc", "exp", "run", "-S", "+videos.climb1_face.offset=0.4", cwd=project)
    assert stages_run(out) == {"labels@climb1_face", "stats", "folds", "evaluate"} | rows()
    assert pd.read_csv(project / "data" / "labels" / "climb2_face.csv")["label"].equals(before)


def test_dropping_classes_retrains_without_relabelling(project):
    out = sh("dvc", "exp", "run", "-S", "labels.drop=[stopwatch,nothing]", cwd=project)
    assert stages_run(out) == {"stats", "evaluate"} | rows()
    metrics = json.loads((project / "reports" / "metrics.json").read_text())["x3d_xs"]
    assert set(metrics["linear"]["per_class_accuracy"]) == {"climbing", "brushing", "reading"}
    assert "protocol: the paper's" in (project / "reports" / "leaderboard.md").read_text()
    preds = predictions(project)
    assert set(preds["pred"]) <= {"climbing", "brushing", "reading"}
    assert not preds[preds["label"].isin(["stopwatch", "nothing"])]["scored"].any()
    assert json.loads((project / "reports" / "dataset.json").read_text())["scope"] == [
        "climbing", "brushing", "reading"]
    # a referee's check: every figure recomputed from the raw predictions by an independent script
    script = Path(__file__).parent / "recompute_metrics.py"
    out = sh(sys.executable, str(script), "reports/predictions", "reports/metrics.json", cwd=project)
    assert float(out.split()[-1]) < 0.01, out


def test_a_bundle_with_a_mode_filter_records_the_metrics_of_what_it_applies(small):
    sh("dvc", "exp", "run", "-S", "train.mode_filter=25", cwd=small)  # 1 s: longer than a window's 8-frame runs
    metrics = json.loads((small / "reports" / "metrics.json").read_text())["x3d_xs"]
    for head in SMALL_HEADS:
        cv = json.loads((small / "models" / "x3d_xs" / head / "bundle.json").read_text())["cv_metrics"]
        assert cv["edit"] == metrics[f"{head}+mode"]["edit"] and cv["accuracy"] == metrics[f"{head}+mode"]["accuracy"]
    assert any(metrics[f"{h}+mode"]["edit"] != metrics[h]["edit"] for h in SMALL_HEADS)  # the filter changed them


def test_training_on_cpu_is_byte_reproducible(project):
    before = prediction_bytes(project), (project / "models" / "x3d_xs" / "mstcn" / "head.pt").read_bytes()
    targets = sorted(rows(["linear", "mstcn"]))
    assert stages_run(sh("dvc", "repro", "--force", "--single-item", *targets, cwd=project)) == set(targets)
    assert (prediction_bytes(project), (project / "models" / "x3d_xs" / "mstcn" / "head.pt").read_bytes()) == before


def test_a_new_backbone_extracts_only_its_own_features_for_every_video(small):
    videos = ("climb1_face", "climb2_face")
    x3d = {v: (small / "features" / "x3d_xs" / f"{v}.zarr" / "zarr.json").stat().st_mtime_ns for v in videos}
    set_params(small, lambda p: p["features"]["backbones"].update(pixels=["pixels"]))
    assert stages_run(sh("dvc", "repro", cwd=small)) == each_video("features-pixels", videos, "pixels") | rows(
        SMALL_HEADS, "pixels", "pixels") | {"evaluate"}
    assert x3d == {v: (small / "features" / "x3d_xs" / f"{v}.zarr" / "zarr.json").stat().st_mtime_ns for v in videos}
    metrics = json.loads((small / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"x3d_xs", "pixels"} and set(metrics["pixels"]) == set(SMALL_HEADS)
    preds = predictions(small)
    assert preds.groupby("backbone").size().to_dict() == {"pixels": 2 * 2 * 250, "x3d_xs": 2 * 2 * 250}

    set_params(small, lambda p: p["train"].update(fusions=[["pixels", "x3d_xs"]]))  # a fusion: its rows alone run
    fused = {f"train-fusion@fusion0-{h}" for h in SMALL_HEADS}
    assert stages_run(sh("dvc", "repro", cwd=small)) == fused | {"evaluate"}
    deps = yaml.safe_load((small / "dvc.lock").read_text())["stages"]["train-fusion@fusion0-linear"]["deps"]
    assert sorted(d["path"] for d in deps if d["path"].startswith("features")) == ["features/pixels", "features/x3d_xs"]
    metrics = json.loads((small / "reports" / "metrics.json").read_text())
    assert set(metrics["pixels+x3d_xs"]) == set(SMALL_HEADS)
    assert "| pixels+x3d_xs | linear |" in (small / "reports" / "leaderboard.md").read_text()
    bundle = json.loads((small / "models" / "pixels+x3d_xs" / "linear" / "bundle.json").read_text())
    assert [m["backbone"] for m in bundle["backbone"]["members"]] == ["pixels", "x3d_xs"]  # params' order, not families'
    assert bundle["feature_dim"] == sum(m["feature_dim"] for m in bundle["backbone"]["members"])
    out = small.parent / "fused-prediction"  # predict recomputes both stores and feeds the head their concatenation
    sh(BOULDERSEG, "predict", "data/raw/videos/climb1_face.mp4", "--model", "models/pixels+x3d_xs/linear", "--out",
       str(out), cwd=small)
    stores = [store.read(small / "features" / b / "climb1_face.zarr") for b in ("pixels", "x3d_xs")]
    head, meta = load_bundle(small / "models" / "pixels+x3d_xs" / "linear")
    expected, _ = predict_frames(head, meta, np.concatenate([np.asarray(s.features) for s in stores], axis=1),
                                 nearest_window(np.asarray(stores[0].frame_range), 250))
    frames, person = pd.read_csv(out / "frames.csv"), pq.read_table(small / "data/persons/climb1_face.parquet")["person"]
    assert frames["person"].tolist() == person.to_pylist() and 0 < frames["person"].sum() < 250  # redone; both kinds
    assert frames["label"].tolist() == np.where(frames["person"], expected, "nothing").tolist()  # nobody: nothing

    entry = make_video(small.parent / "incoming", climb=5, view="face")  # then `add` a video (the sample's raw folder has climb1-4): only its stages run
    printed = sh(BOULDERSEG, "add", entry["video"], entry["annotation"], "--climb", "climb5", "--view", "face", cwd=small)
    assert "features-pytorchvideo@climb5_face-x3d_xs, features-pixels@climb5_face-pixels" in printed
    assert (small / "data/raw/videos/climb5_face.mp4").read_bytes() == Path(entry["video"]).read_bytes()
    every_row = rows(SMALL_HEADS) | rows(SMALL_HEADS, "pixels", "pixels") | fused
    assert stages_run(sh("dvc", "repro", cwd=small)) == {
        "labels@climb5_face", "frames@climb5_face", "persons@climb5_face", "features-pytorchvideo@climb5_face-x3d_xs",
        "features-pixels@climb5_face-pixels", "stats", "folds", "evaluate"} | every_row
    assert (predictions(small).query("video == 'climb5_face'").groupby(["backbone", "head"]).size() == 250).all()

    sh(BOULDERSEG, "remove", "climb5_face", cwd=small)  # and `remove` it: every row retrains without it
    assert stages_run(sh("dvc", "repro", cwd=small)) == every_row | {"stats", "folds", "evaluate"}
    assert "climb5_face" not in set(predictions(small)["video"])


def test_new_heads_train_only_their_rows_and_every_head_beats_the_majority_class(project):
    before = prediction_bytes(project)
    others = [h for h in SHIPPED_HEADS if h not in HEADS]
    fewer = {"bilstm": {"epochs": 10}}  # CI time, as the sample's lstm (conftest)
    set_params(project, lambda p: p["train"]["heads"].update({h: SHIPPED_HEADS[h] | fewer.get(h, {}) for h in others}))
    assert stages_run(sh("dvc", "repro", cwd=project)) == rows(others) | {"evaluate"}
    assert {k: v for k, v in prediction_bytes(project).items() if not any(f"/{h}." in k for h in others)} == before
    metrics = json.loads((project / "reports" / "metrics.json").read_text())["x3d_xs"]
    all_labels = pd.concat(pd.read_csv(p)["label"] for p in (project / "data" / "labels").glob("*.csv"))
    majority = 100 * all_labels.value_counts(normalize=True).iloc[0]
    assert set(metrics) == set(SHIPPED_HEADS)  # even on untrained-backbone features, every head learns
    assert {h: m["accuracy"]["mean"] for h, m in metrics.items() if m["accuracy"]["mean"] <= majority} == {}
    board = (project / "reports" / "leaderboard.md").read_text()
    assert all(f"| x3d_xs | {h} |" in board for h in SHIPPED_HEADS)


def test_export_mstcn_on_the_sample_and_score_a_prediction(project):
    from test_export import read_like_mstcn

    sh(BOULDERSEG, "export", "mstcn", "mstcn", cwd=project)
    folds = json.loads((project / "reports" / "folds.json").read_text())
    test = read_like_mstcn(project / "mstcn", 1, "test")
    assert len(test) == len(folds["fold0"]) and all(f.shape == (2048, 250) and len(t) == 250 for f, t in test)
    preds = predictions(project)
    one = preds[(preds["head"] == "linear") & (preds["video"] == "climb1_face")]
    for column, folder in (("label", "truth"), ("pred", "pred")):
        (project / folder).mkdir()
        one[["frame", column]].rename(columns={column: "label"}).to_csv(project / folder / "climb1_face.csv", index=False)
    out = json.loads(sh(BOULDERSEG, "score", "truth", "pred", "--json",
                        cwd=project))
    assert out["frames"] == 250 and 0 <= out["edit"] <= 100 and set(out) >= {"accuracy", "f1@10", "f1@25", "f1@50"}
