from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib.metadata import version

import pandas as pd
from cliproject import BIN, boulderseg, project
from sheetio import write_sheet

from conftest import REPO
from pipeline.cli import STAGES
from pipeline.core import profiles


def listed(help_text: str) -> set[str]:
    """The commands a --help lists in its Commands box."""
    box = help_text.partition("─ Commands ─")[2]
    return {line.split()[1] for line in box.splitlines() if line.startswith("│ ") and not line[2].isspace()}


def test_help_lists_the_users_commands_and_the_stages_under_stage(tmp_path):
    r = boulderseg("--help", cwd=tmp_path)
    assert r.returncode == 0
    assert {"validate", "sample", "backbones", "heads", "score", "inspect", "export", "add", "remove", "status",
            "predict", "verify", "repro", "profile", "review", "report", "stage"} == listed(r.stdout)
    assert listed(boulderseg("stage", "--help", cwd=tmp_path).stdout) == set(STAGES)
    assert listed(boulderseg("inspect", "--help", cwd=tmp_path).stdout) == {"video", "features", "timeline", "crops"}
    r = boulderseg("stage", "labels", "--help", cwd=tmp_path)  # the fast path: that stage's command alone
    assert r.returncode == 0 and "Usage: boulderseg stage labels [OPTIONS] {video} {out_csv}" in " ".join(r.stdout.split())


def test_an_old_command_name_says_the_new_one(tmp_path):
    for old, new in [("labels", "stage labels"), ("evaluate", "stage evaluate"), ("timeline", "inspect timeline"),
                     ("airgapped", "profile default --run")]:
        r = boulderseg(old, "x", cwd=tmp_path)
        assert r.returncode == 2 and r.stderr == f"error: `boulderseg {old}` is now `boulderseg {new}`.\n"


def test_version_and_shell_completion(tmp_path):
    r = boulderseg("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == f"boulderseg {version('boulderseg')}\n"
    r = boulderseg("--show-completion", "bash", cwd=tmp_path)
    assert r.returncode == 0 and "_boulderseg_completion" in r.stdout and "complete " in r.stdout
    # the script asks the command itself: `boulderseg stage l<TAB>` completes to labels
    r = subprocess.run([str(BIN / "boulderseg")], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env=os.environ | {"_BOULDERSEG_COMPLETE": "complete_bash", "COMP_WORDS": "boulderseg stage l",
                                         "COMP_CWORD": "2"})
    assert r.returncode == 0 and r.stdout.split() == ["labels"]


def test_help_says_what_each_option_does_in_paragraphs_the_terminal_wraps(tmp_path):
    def help_of(*command: str) -> str:
        r = subprocess.run([str(BIN / "boulderseg"), *command, "--help"], cwd=tmp_path, capture_output=True, text=True,
                           env=os.environ | {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    # a paragraph is one line at 250 columns, not the docstring's lines
    assert "keeping the file's comments and order: under `videos` with an annotation" in help_of("add")
    for writer in (["add"], ["remove"], ["profile"], ["review"]):
        assert "The params.yaml this command changes" in help_of(*writer)
    for reader in (["status"], ["validate"], ["report"], ["stage", "labels"], ["inspect", "video"]):
        assert "this command never changes it" in help_of(*reader) and "changes (its" not in help_of(*reader)
    shown = help_of("profile")
    keys = {"features.backbones.<family>" if k.startswith("features.backbones.") else k for k in profiles.GOVERNED}
    assert [k for k in keys if k not in shown] == []
    assert "tls://HOST:8786" in help_of("repro") and "tcp://" not in help_of("repro")
    assert "required with VIDEO" in help_of("predict")


def test_predict_names_the_missing_out_and_the_bundles_there_are(tmp_path, bikes):
    bundle = tmp_path / "models/x3d_xs/linear"
    bundle.mkdir(parents=True)
    (bundle / "bundle.json").write_text("{}")
    (tmp_path / "models/x3d_xs/half").mkdir()  # no bundle.json: not listed
    r = boulderseg("predict", str(bikes), "--model", "models/x3d_xs/nope", "--out", "o", cwd=tmp_path)
    assert r.returncode == 1 and "error: models/x3d_xs/nope: not a model bundle (no bundle.json). Bundles here: " \
        "models/x3d_xs/linear. `dvc repro` trains one" in r.stderr and not (tmp_path / "o").exists()
    r = boulderseg("predict", str(bikes), "--model", "models/x3d_xs/linear", cwd=tmp_path)
    assert r.returncode == 1 and "error: --out DIR is needed with VIDEO" in r.stderr


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

    shutil.copytree(tmp_path / "features/pixels/v.zarr", tmp_path / "features/pixels/w.zarr")
    run = boulderseg("inspect", "features", "--features-dir", str(tmp_path / "features"), "--json", cwd=tmp_path)
    stores = json.loads(run.stdout)
    assert [(s["backbone"], s["video"], s["shape"], s["dtype"]) for s in stores] == [
        ("pixels", "v", [12, 3840], "float16"), ("pixels", "w", [12, 3840], "float16")]
    assert stores[0]["config"]["window"] == 16 and stores[0]["bytes"] > 0
    lines = boulderseg("inspect", "features", "--features-dir", str(tmp_path / "features"), cwd=tmp_path
                       ).stdout.splitlines()  # what both stores record: once
    assert lines[2] == "  recorded by every pixels store:" and lines.count("    window: 16") == 1
