"""`boulderseg verify` on damaged records it reads, and the order `verify --fix` reruns stages in."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from cliproject import project
from kit import failed_with

from conftest import REPO
from e2e import BOULDERSEG, ENV
from pipeline.views.verify import Problem, stages_to_rerun

MANIFESTS = {  # video -> a damaged data/frames/<video>/manifest.json, and what verify says of it
    "clip": ("{\"frames\": 25", "does not read as JSON (Expecting ',' delimiter: line 1 column 14 (char 13))"),
    "clip_nokey": ("{\"fps\": 25}", "records no \"frames\" count"),
    "clip_list": ("[250]", "records no \"frames\" count"),
    "clip_text": ("{\"frames\": \"250\"}", "records \"frames\": \"250\", not a count of frames"),
    "clip_float": ("{\"frames\": 2.5}", "records \"frames\": 2.5, not a count of frames"),
}


def dvc_project(root: Path) -> Path:
    """`root` as a DVC project with the repository's dvc.yaml."""
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=root, env=ENV, check=True)
    return root


def test_a_damaged_frames_manifest_is_named_with_the_stage_that_rebuilds_it(tmp_path, bikes):
    root = project(tmp_path, bikes)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"] = {key: p["videos"]["clip"] for key in MANIFESTS}
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    for key, (text, _) in MANIFESTS.items():
        (root / "data/frames" / key).mkdir(parents=True)
        (root / "data/frames" / key / "manifest.json").write_text(text)
    r = subprocess.run([BOULDERSEG, "verify"], cwd=dvc_project(root), env=ENV, capture_output=True, text=True)
    failed_with(r, "problem(s); `boulderseg verify --fix` reruns ", *(f"frames@{key}," for key in MANIFESTS))
    for key, (_, what) in MANIFESTS.items():
        assert f"{key}: data/frames/{key}/manifest.json {what} (rebuilt by frames@{key})\n" in r.stdout


def test_fix_reruns_stages_in_the_order_of_dvcs_graph(tmp_path, monkeypatch):
    """`dvc repro --single-item` runs its targets in the order given: each stage must come after those it depends
    on (train after the features, persons and labels it reads, evaluate after every train), not alphabetically."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["videos"] = {key: p["videos"][key] for key in ("climb1_face", "climb2_face")}
    p["features"]["backbones"] = {family: [] for family in p["features"]["backbones"]} | {"pytorchvideo": ["x3d_xs"]}
    p["train"]["heads"] = {head: p["train"]["heads"][head] for head in ("linear", "lstm")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    broken = ["evaluate", "train-pytorchvideo@x3d_xs-lstm", "features-pytorchvideo@climb1_face-x3d_xs",
              "persons@climb2_face", "train-pytorchvideo@x3d_xs-linear", "frames@climb1_face", "labels@climb2_face",
              "folds", "stats"]
    monkeypatch.chdir(dvc_project(tmp_path))  # where `boulderseg verify --fix` runs `dvc repro`
    order = stages_to_rerun([Problem("", stage, "damaged") for stage in broken])
    assert order == ["labels@climb2_face", "frames@climb1_face", "persons@climb2_face",
                     "features-pytorchvideo@climb1_face-x3d_xs", "folds", "stats", "train-pytorchvideo@x3d_xs-linear",
                     "train-pytorchvideo@x3d_xs-lstm", "evaluate"]
