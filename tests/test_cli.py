from __future__ import annotations

import json
import shutil

import pandas as pd
from cliproject import boulderseg, project
from sheetio import write_sheet

from conftest import REPO

def test_help_lists_every_command(tmp_path):
    r = boulderseg("--help", cwd=tmp_path)
    assert r.returncode == 0
    listed = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert {"labels", "validate", "stats", "frames", "persons", "features", "folds", "train", "evaluate", "sample",
            "backbones", "heads", "score", "inspect", "export", "add", "remove", "status", "timeline", "predict",
            "verify", "repro"} <= listed


def test_labels_writes_one_row_per_frame_and_warns_about_clipping(tmp_path, bikes):
    p = project(tmp_path, bikes)
    r = boulderseg("stage", "labels", "clip", "out.csv", cwd=p)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ("warning: annotation.xlsx, sheet 'Feuil1', row 4: segment 'stopwatch' 9.5-10.5 s "
                                "runs past the video (0-10 s); clipped")
    df = pd.read_csv(p / "out.csv")
    assert list(df.columns) == ["frame", "time", "label"] and len(df) == 250
    assert df["label"].iloc[24] == "nothing" and df["label"].iloc[25] == "climbing"
    assert df["label"].iloc[74] == "climbing" and df["label"].iloc[75] == "nothing"
    # 4.5 s falls between frames 112 (4.48 s) and 113 (4.52 s); 5.0 s is frame 125, excluded
    assert df["label"].iloc[112] == "nothing" and (df["label"].iloc[113:125] == "reading").all()
    assert df["label"].iloc[125] == "nothing" and df["label"].iloc[237] == "nothing" and (df["label"].iloc[238:] == "stopwatch").all()
    assert df["time"].iloc[25] == 1.0


def test_unknown_label_exits_nonzero_naming_file_and_row_without_output(tmp_path, bikes):
    p = project(tmp_path, bikes, [["Action", "Début", "Durée"], ["grimpe", 0, 1], ["dormir", 2, 1]])
    r = boulderseg("stage", "labels", "clip", "out.csv", cwd=p)
    assert r.returncode == 1
    assert "error: annotation.xlsx, sheet 'Feuil1': 1 problem(s)" in r.stderr
    assert "row 3, column 'Action': unknown label 'dormir'" in r.stderr and "Traceback" not in r.stderr
    assert not (p / "out.csv").exists() and not list(p.glob(".out.csv.tmp-*"))
    r = boulderseg("stage", "labels", "nope", "out.csv", cwd=p)
    assert r.returncode == 1 and "error: params.yaml: no video 'nope' under videos; known: clip." in r.stderr


def test_validate_and_stats(tmp_path, bikes):
    p = project(tmp_path, bikes)
    r = boulderseg("validate", cwd=p)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ok  clip: 250 frames, 3 segments from annotation.xlsx, sheet 'Feuil1'",
                                     "1 videos ready, 1 warning(s)."]
    assert boulderseg("stage", "labels", "clip", "labels/clip.csv", cwd=p).returncode == 0
    r = boulderseg("stage", "stats", "labels", "--out", "dataset.json", "--plots", "plots", cwd=p)
    assert r.returncode == 0, r.stderr
    assert "climbing:  20.0% of frames, 1 segments, mean 2.00 s" in r.stdout  # 50 of 250 frames
    stats = json.loads((p / "dataset.json").read_text())
    assert stats["classes"]["reading"]["frames"] == 12 and stats["classes"]["stopwatch"]["frames"] == 12
    assert stats["person_share"] == {"per_video": {"clip": None}, "threshold": 0.5, "low": []}  # persons not run
    assert sorted(f.name for f in (p / "plots").rglob("*.png")) == [
        "class_distribution.png", "clip.png", "temporal_distribution.png"]
    write_sheet(p / "annotation.xlsx", [["Action", "Début"], ["grimpe", 1.0]])
    r = boulderseg("validate", cwd=p)
    assert r.returncode == 1 and "error: 1 problem(s) in the dataset:" in r.stderr
    assert "missing column(s) duration or end" in r.stderr


def test_unreadable_video_exits_nonzero_without_output(tmp_path):
    p = tmp_path
    shutil.copy(REPO / "params.yaml", p / "params.yaml")
    (p / "clip.mp4").write_text("not a video")
    r = boulderseg("stage", "frames", "clip.mp4", "frames/clip", cwd=p)
    assert r.returncode == 1
    assert "error: clip.mp4: cannot decode this video" in r.stderr and "Traceback" not in r.stderr
    assert not (p / "frames" / "clip").exists()


def test_backbones_lists_the_registry_marking_the_listed_ones_and_their_weights(tmp_path, bikes):
    from pipeline.features.backbones import load_all

    root = project(tmp_path, bikes)
    (root / "weights").mkdir()
    (root / "weights" / "s3d-d76dad2f.pth").write_bytes(b"")  # present, whatever it holds
    run = boulderseg("backbones", cwd=root)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["name", "family", "level", "dim", "paper", "clip", "upstream", "clip", "input",
                                "params", "paper", "present", "weights"]
    rows = {line[2:].split()[0]: line for line in lines[1:-1]}
    assert set(rows) == set(load_all())
    assert rows["efficientnet_lite0"].startswith("* efficientnet_lite0 ") and rows["x3d_xs"].startswith("  x3d_xs ")
    assert rows["x3d_xs"].split()[1:10] == ["pytorchvideo", "segment", "2048", "4x1", "0.16s", "4x10", "1.60s", "182²",
                                            "3.0M"]
    assert rows["slowfast_r50"].split()[4:8] == ["32x1", "1.28s", "32x2", "2.56s"]  # the paper's clip / upstream
    assert rows["s3d_k"].split()[-2:] == ["yes", "https://download.pytorch.org/models/s3d-d76dad2f.pth"]
    assert rows["pixels"].split()[-2:] == ["-", "none"]


def test_inspect_features_shows_shape_dtype_and_recorded_configuration(tmp_path, bikes_frames):
    from pipeline.features.extract import extract_features

    extract_features(bikes_frames, tmp_path / "features" / "pixels" / "v.zarr", backbone="pixels", pretrained=False,
                     fps=10, device="cpu")
    run = boulderseg("inspect", "features", "pixels", "--features-dir", str(tmp_path / "features"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first, *config = run.stdout.splitlines()
    assert first.startswith("pixels/v: (12, 3840) float16, chunks (256, 3840), ") and first.endswith(" KiB on disk")
    assert '    backbone: "pixels"' in config and '    dtype: "float16"' in config and "    window: 16" in config
    assert boulderseg("inspect", "features", "x3d_xs", "--features-dir", str(tmp_path / "features"),
                      cwd=tmp_path).stdout.strip() == f"no feature stores under {tmp_path / 'features'}/x3d_xs"
