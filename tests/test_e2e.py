"""The real `dvc repro` of the sample dataset in a temp copy of the repo, offline switch on."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import REPO
from pipeline import store
from pipeline.features import windows
from pipeline.sample import make_video

pytestmark = pytest.mark.slow
ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}


def sh(*cmd: str, cwd: Path) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, str]:
    """A fresh copy of the repository after the README's offline run."""
    root = tmp_path_factory.mktemp("project")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_bytes((REPO / f).read_bytes())
    sh("git", "init", "-q", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "sample", cwd=root)
    return root, sh("dvc", "exp", "run", "-S", "weights.pretrained=false", cwd=root)


def test_first_run_builds_every_artifact(project):
    root, output = project
    params = yaml.safe_load((root / "params.yaml").read_text())
    videos = params["videos"]
    assert params["weights"]["pretrained"] is False
    assert stages_run(output) == {f"{s}@{v}" for s in ("labels", "frames", "persons", "features") for v in videos} | {
        "stats", "train", "evaluate"}
    for name in videos:
        labels = pd.read_csv(root / "data" / "labels" / f"{name}.csv")
        jpgs = sorted((root / "data" / "frames" / name).glob("*.jpg"))
        assert len(labels) == len(jpgs) == 250  # 10 s at 25 fps
        assert labels["frame"].tolist() == list(range(250)) and jpgs[-1].name == "000249.jpg"
        persons = pq.read_table(root / "data" / "persons" / f"{name}.parquet")
        assert persons.num_rows == 250 and all(persons["keep"].to_pylist())
        fs = store.read(root / "features" / "x3d_xs" / f"{name}.zarr")
        assert fs.features.shape == (31, 2048)
        assert fs.frame_range.tolist() == windows(250, window=16, stride=8).tolist()
        assert fs.attrs["weights"] == {"pretrained": False, "random_init_seed": 0}
    assert sorted(p.name for p in (root / "models" / "lstm").iterdir()) == [f"fold{k}.pt" for k in range(4)]
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"linear", "lstm"}
    for m in metrics.values():
        assert len(m["folds"]) == 4 and set(m["per_class_accuracy"]) == set(params["labels"]["classes"])
    # the smoke test of learning: even on untrained-backbone features the head beats the majority class
    all_labels = pd.concat(pd.read_csv(p)["label"] for p in (root / "data" / "labels").glob("*.csv"))
    majority = all_labels.value_counts(normalize=True).iloc[0]
    assert metrics["linear"]["accuracy"]["mean"] > majority + 0.15
    for png in ("confusion.png", "timelines.png"):
        assert (root / "reports" / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert "reports/metrics.json" in sh("dvc", "metrics", "show", cwd=root)
    dataset = json.loads((root / "reports" / "dataset.json").read_text())
    assert dataset["videos"] == 8 and dataset["frames"] == 8 * 250
    assert sum(c["frames"] for c in dataset["classes"].values()) == len(all_labels)
    assert dataset["classes"]["climbing"]["frames"] == (all_labels == "climbing").sum()
    assert sorted(p.name for p in (root / "reports" / "dataset" / "timelines").iterdir()) == [
        f"{v}.png" for v in sorted(videos)]


def test_second_repro_runs_no_stage(project):
    root, _ = project
    out = sh("dvc", "repro", cwd=root)
    assert stages_run(out) == set()


def test_training_param_change_reruns_only_train_and_evaluate(project):
    root, _ = project
    before = (root / "reports" / "metrics.json").read_text()
    out = sh("dvc", "exp", "run", "-S", "train.heads.linear.epochs=50", cwd=root)
    assert stages_run(out) == {"train", "evaluate"}
    assert (root / "reports" / "metrics.json").read_text() != before


def test_one_videos_offset_relabels_only_that_video(project):
    root, _ = project
    before = pd.read_csv(root / "data" / "labels" / "climb2_face.csv")["label"]
    out = sh("dvc", "exp", "run", "-S", "+videos.climb1_face.offset=0.4", cwd=root)
    assert stages_run(out) == {"labels@climb1_face", "stats", "train", "evaluate"}
    assert pd.read_csv(root / "data" / "labels" / "climb2_face.csv")["label"].equals(before)


def test_dropping_classes_retrains_without_relabelling(project):
    root, _ = project
    out = sh("dvc", "exp", "run", "-S", "labels.drop=[stopwatch,nothing]", cwd=root)
    assert stages_run(out) == {"stats", "train", "evaluate"}
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert set(metrics["linear"]["per_class_accuracy"]) == {"climbing", "brushing", "reading"}
    preds = pd.read_parquet(root / "reports" / "predictions.parquet")
    assert set(preds["pred"]) <= {"climbing", "brushing", "reading"}
    assert not preds[preds["label"].isin(["stopwatch", "nothing"])]["keep"].any()
    assert json.loads((root / "reports" / "dataset.json").read_text())["scope"] == ["climbing", "brushing", "reading"]


def test_training_is_reproducible(project):
    root, _ = project
    before = (root / "reports" / "predictions.parquet").read_bytes()
    out = sh("dvc", "repro", "--force", "--single-item", "train", cwd=root)
    assert stages_run(out) == {"train"}
    assert (root / "reports" / "predictions.parquet").read_bytes() == before


def test_new_video_reruns_only_its_own_stages(project):
    root, _ = project
    entry = make_video(root / "data" / "raw", climb=5, view="face")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["videos"]["climb5_face"] = {k: str(Path(v).relative_to(root)) if k in ("video", "annotation") else v
                                       for k, v in entry.items()}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc", "repro", cwd=root)
    assert stages_run(out) == {"labels@climb5_face", "frames@climb5_face", "persons@climb5_face",
                               "features@climb5_face", "stats", "train", "evaluate"}
    preds = pd.read_parquet(root / "reports" / "predictions.parquet")
    assert (preds[preds["video"] == "climb5_face"]["frame"].to_numpy() == np.tile(np.arange(250), 2)).all()
