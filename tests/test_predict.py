"""`boulderseg predict` on a sample video with the sample run's untrained bundles (the shared e2e run)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from e2e import BOULDERSEG, sh, stages_run
from pipeline.annotations.sample import make_video
from pipeline.annotations.segments import LabelPolicy, frame_labels, read_segments
from pipeline.core import params
from pipeline.features import store
from pipeline.learning import bundle
from pipeline.learning.dataset import nearest_window

pytestmark = pytest.mark.slow


def test_predict_segments_a_video_as_the_pipeline_would_and_touches_nothing(project, tmp_path):
    video, model, out = project / "data/raw/videos/climb3_face.mp4", project / "models/x3d_xs/mstcn", tmp_path / "pred"
    before = sh("git", "status", "--porcelain", cwd=project) + sh("dvc", "status", cwd=project)
    printed = sh(BOULDERSEG, "predict", str(video), "--model", str(model), "--out", str(out), cwd=project)
    assert "attempts (climbing phases):" in printed and "nobody in frame:" in printed
    assert sh("git", "status", "--porcelain", cwd=project) + sh("dvc", "status", cwd=project) == before
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.json", "segments.csv", "segments.xlsx",
                                                     "timeline.png", "work"]

    # every step redone as in training: the same features, so the same labels the bundle gives for the project's store
    fs, ours = store.read(project / "features/x3d_xs/climb3_face.zarr"), store.read(out / "work/features.zarr")
    np.testing.assert_array_equal(np.asarray(ours.features), np.asarray(fs.features))
    head, meta = bundle.load(model)
    expected, _ = bundle.predict(head, meta, np.asarray(fs.features), nearest_window(np.asarray(fs.frame_range), 250))
    frames = pd.read_csv(out / "frames.csv")
    assert frames.columns.tolist() == ["frame", "time", "label", "confidence", "person"] and len(frames) == 250
    person = pq.read_table(out / "work/persons.parquet")["person"].to_numpy()
    assert frames["person"].tolist() == person.tolist() and not person.all()  # some frames show nobody
    assert frames["label"].tolist() == np.where(person, expected, "nothing").tolist()
    assert frames["time"].tolist() == pytest.approx(np.arange(250) / 25)
    assert ((frames["confidence"] > 0) & (frames["confidence"] <= 1)).all()

    # segments tile the video (10 s) and read back through our own annotation reader to frames.csv's labels
    seg = pd.read_csv(out / "segments.csv")
    ends = seg["start (s)"] + seg["duration (s)"]
    assert seg["start (s)"].iloc[0] == 0 and np.allclose(ends[:-1], seg["start (s)"][1:]) and ends.iloc[-1] == 10.0
    p = yaml.safe_load((project / "params.yaml").read_text())
    assert set(seg["label"]) <= set(p["labels"]["map"])  # the annotators' words
    policy = LabelPolicy.from_params(params.Labels(**p["labels"]), fps=25)
    segments, _ = read_segments(out / "segments.xlsx", policy)
    assert frame_labels(segments, n_frames=250, fps=25, policy=policy) == frames["label"].tolist()

    report = json.loads((out / "report.json").read_text())
    assert report["duration_s"] == 10.0 and report["head"] == "mstcn" and report["backbone"] == "x3d_xs"
    assert report["notes"] == ["the video's frames are 320x240, below the bundle's frames.short_side (256): a small "
                               "source is never upscaled, and each backbone resizes it to its own input"]
    assert report["attempts"] == (seg["label"] == "grimpe").sum()
    assert sum(ph["total_s"] for ph in report["phases"].values()) == pytest.approx(10.0)
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_without_a_bundle_says_which_stage_writes_it(project, tmp_path):
    video = project / "data/raw/videos/climb3_face.mp4"
    r = subprocess.run([BOULDERSEG, "predict", str(video), "--model", "models/x3d_xs/nope", "--out", str(tmp_path / "o")],
                       cwd=project, capture_output=True, text=True)
    assert r.returncode == 1 and "models/x3d_xs/nope: not a model bundle" in r.stderr
    assert "train-<family>@<backbone>-<head>" in r.stderr and not (tmp_path / "o").exists()


def test_an_unannotated_video_gets_frames_persons_features_only_and_predict_fills_it_in(project, tmp_path):
    entry = make_video(tmp_path / "incoming", climb=5, view="face")
    sh(BOULDERSEG, "add", entry["video"], "--view", "face", cwd=project)
    assert stages_run(sh("dvc", "repro", cwd=project)) == {
        "frames-unannotated@climb5_face", "persons-unannotated@climb5_face",
        "features-pytorchvideo-unannotated@climb5_face-x3d_xs"}  # no labels, stats, folds, training
    row = next(line for line in sh(BOULDERSEG, "status", cwd=project).splitlines() if line.startswith("climb5_face"))
    passing = pq.read_table(project / "data/unannotated/persons/climb5_face.parquet")["person"].to_numpy().mean()
    assert row.split()[1:] == ["face", "no", "250", f"{100 * passing:.0f}", "%", "x3d_xs", "up", "to", "date"]

    printed = sh(BOULDERSEG, "predict", "--all-unannotated", "--model", "models/x3d_xs/lstm", cwd=project)
    out = project / "data/unannotated/predicted/climb5_face"
    assert printed.startswith("data/unannotated/predicted/climb5_face: ")
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.json", "segments.csv", "segments.xlsx",
                                                     "timeline.png"]
    frames = pd.read_csv(out / "frames.csv")
    p = yaml.safe_load((project / "params.yaml").read_text())
    policy = LabelPolicy.from_params(params.Labels(**p["labels"]), fps=25)
    segments, _ = read_segments(out / "segments.xlsx", policy)
    assert frame_labels(segments, n_frames=250, fps=25, policy=policy) == frames["label"].tolist()
    assert stages_run(sh("dvc", "repro", cwd=project)) == set()  # predicting touched no stage's inputs


def test_a_phone_clip_whose_last_packet_does_not_decode_goes_through_add_and_repro(project, tmp_path):
    from pathlib import Path

    from videocut import cut_tail

    entry = make_video(tmp_path / "incoming", climb=6, view="face")
    phone = cut_tail(Path(entry["video"]), tmp_path / "climb6_face.mp4", 1)
    added = subprocess.run([BOULDERSEG, "add", str(phone), entry["annotation"], "--climb", "climb6", "--view", "face"],
                           cwd=project, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    assert added.stderr.count("warning:") == 1 and "frames do not decode (a cut-off last packet" in added.stderr
    ran = stages_run(sh("dvc", "repro", cwd=project))
    assert {"labels@climb6_face", "frames@climb6_face", "persons@climb6_face"} <= ran
    manifest = json.loads((project / "data/frames/climb6_face/manifest.json").read_text())
    assert manifest["missing"] > 0 and manifest["source_frames"] == 250 == manifest["decoded"] + manifest["missing"]
    labels = pd.read_csv(project / "data/labels/climb6_face.csv")
    assert len(labels) == manifest["frames"] == manifest["decoded"]  # 25 fps: labels follow the decoded length
    assert pq.read_table(project / "data/persons/climb6_face.parquet").num_rows == manifest["frames"]


def edited_bundle(model, tmp_path, edit) -> str:
    """A copy of the bundle at `model` with its bundle.json edited, as if trained elsewhere or by other code."""
    import shutil

    copy = tmp_path / f"bundle-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(model, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    edit(meta)
    (copy / "bundle.json").write_text(json.dumps(meta))
    return str(copy)


def test_predict_refuses_features_not_computed_as_the_bundle_was_trained(project, tmp_path):
    video, model = project / "data/raw/videos/climb3_face.mp4", project / "models/x3d_xs/linear"
    assert json.loads((model / "bundle.json").read_text())["backbone"]["precision"] == "float32"

    def spec(meta):  # the code's input spec changed since the bundle was trained
        meta["backbone"]["preprocessing"]["short_side"] = 200

    r = subprocess.run([BOULDERSEG, "predict", str(video), "--model", edited_bundle(model, tmp_path, spec), "--out",
                        str(tmp_path / "o")], cwd=project, capture_output=True, text=True)
    assert r.returncode == 1 and "was not computed as" in r.stderr and "preprocessing: the store has" in r.stderr
    assert "'short_side': 182" in r.stderr and "'short_side': 200" in r.stderr
    assert not (tmp_path / "o" / "frames.csv").exists()

    entry = make_video(tmp_path / "incoming", climb=5, view="face")
    sh(BOULDERSEG, "add", entry["video"], "--view", "face", cwd=project)
    sh("dvc", "repro", cwd=project)

    def gpu(meta):  # trained on features a GPU computed under bfloat16 autocast
        meta["backbone"]["precision"] = "bfloat16-autocast"

    def weights(meta):  # other weights than the store's (a random init of another seed)
        meta["backbone"]["weights"]["random_init_seed"] = 7

    def crop(meta):  # clips cut with another margin than the store's (features.crop climber, margin 1.0)
        meta["backbone"]["preprocessing"]["crop"] = {"rule": "climber", "margin": 0.5, "short_side": 720}

    for edit, words in ((gpu, "precision: the store has 'float32', the bundle 'bfloat16-autocast'"),
                        (weights, "weights: the store has {'pretrained': False, 'random_init_seed': 0}"),
                        (crop, "'crop': {'rule': 'climber', 'margin': 0.5, 'short_side': 720}")):
        r = subprocess.run([BOULDERSEG, "predict", "--all-unannotated", "--model", edited_bundle(model, tmp_path, edit)],
                           cwd=project, capture_output=True, text=True)
        assert r.returncode == 1 and words in r.stderr, r.stderr
    # frames stored at another height than the bundle's: rebuilt for real, then refused
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["frames"]["short_side"] = 200
    (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh("dvc", "repro", "features-pytorchvideo-unannotated@climb5_face-x3d_xs", cwd=project)
    r = subprocess.run([BOULDERSEG, "predict", "--all-unannotated", "--model", str(model)], cwd=project,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "frames_short_side: the store has 200, the bundle 256" in r.stderr, r.stderr
    assert not (project / "data/unannotated/predicted/climb5_face").exists()


def test_a_bundle_trained_on_small_sources_segments_a_taller_video(project, tmp_path):
    """The sample's sources are 240 rows, below frames.short_side (256): a real video is taller, and what its
    backbone sees is sized the same way (frames.short_side, then the input spec), so it is segmented."""
    import av

    tall = tmp_path / "tall.mp4"
    with av.open(str(project / "data/raw/videos/climb3_face.mp4")) as src, av.open(str(tall), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for frame in src.decode(video=0):
            out.mux(stream.encode(frame.reformat(width=640, height=480, format="yuv420p")))
        out.mux(stream.encode())
    out = tmp_path / "pred"
    r = subprocess.run([BOULDERSEG, "predict", str(tall), "--model", str(project / "models/x3d_xs/linear"), "--out",
                        str(out)], cwd=project, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "work/frames/manifest.json").read_text())
    assert (manifest["width"], manifest["height"], manifest["short_side"]) == (342, 256, 256)
    assert json.loads((out / "report.json").read_text())["notes"] == [] and "below the bundle's" not in r.stderr
    assert len(pd.read_csv(out / "frames.csv")) == 250


@pytest.mark.parametrize(("key", "value", "words"), [
    ("precision", "bfloat16-autocast", "precision in one training set (bfloat16-autocast: climb2_face; float32: climb1_face)"),
    ("skip_static", 2.0, "skip_static in one training set (2.0: climb2_face; None: climb1_face)"),
])
def test_train_refuses_stores_made_differently(key, value, words, small):
    import zarr

    group = zarr.open_group(str(small / "features/x3d_xs/climb2_face.zarr"), mode="r+")
    group.attrs[key] = value  # as if this video was extracted on a GPU, or with another threshold
    r = subprocess.run([BOULDERSEG, "stage", "train", "x3d_xs", "linear"], cwd=small, capture_output=True, text=True)
    assert r.returncode == 1
    assert f"stores of different {words}" in r.stderr, r.stderr
