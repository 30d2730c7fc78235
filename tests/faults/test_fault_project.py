"""Faults in a whole project (a copy of the two-video offline run): damaged artifacts found by `verify` and
mended by `verify --fix`, an input deleted after the run, two runs at once, training stopped midway."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from kit import failed_with, files, no_temp_left
from test_fault_signals import interrupted, signal_when, start

from e2e import BOULDERSEG, ENV, prediction_bytes, set_params, stages_run

pytestmark = pytest.mark.slow
STORE = "features/x3d_xs/climb2_face.zarr"


def bs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BOULDERSEG, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)


def git_diff(root: Path) -> str:
    return subprocess.run(["git", "diff", "--stat"], cwd=root, capture_output=True, text=True, check=True).stdout


def test_verify_passes_a_clean_run(small):
    r = bs("verify", cwd=small)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified 2 video(s): every artifact agrees with the others, its record and dvc.lock." in r.stdout


def test_verify_names_a_truncated_jpg_and_a_corrupted_chunk_and_fix_reruns_exactly_their_stages(small):
    frames, store = small / "data/frames/climb1_face", small / STORE
    before = files(frames) | {f"store/{k}": v for k, v in files(store).items()}
    jpg = frames / "000100.jpg"
    jpg.write_bytes(jpg.read_bytes()[:3000])
    chunk = next((store / "features" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    damaged = bytearray(chunk.read_bytes())
    damaged[40:80] = bytes(40)
    chunk.write_bytes(bytes(damaged))

    r = bs("verify", cwd=small)
    failed_with(r, "4 problem(s)", "`boulderseg verify --fix` reruns frames@climb1_face, "
                "features-pytorchvideo@climb2_face-x3d_xs.")
    assert ("climb1_face: data/frames/climb1_face: 1 JPG(s) do not decode: 000100.jpg (Premature end of JPEG file) "
            "(rebuilt by frames@climb1_face)") in r.stdout
    assert (f"climb2_face: {STORE} does not read (RuntimeError: error during blosc decompression: -1) "
            "(rebuilt by features-pytorchvideo@climb2_face-x3d_xs)") in r.stdout
    assert "climb1_face: data/frames/climb1_face modified: it does not match dvc.lock" in r.stdout

    r = bs("verify", "--fix", cwd=small)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stages_run(r.stdout + r.stderr) == {"frames@climb1_face", "features-pytorchvideo@climb2_face-x3d_xs"}
    assert files(frames) | {f"store/{k}": v for k, v in files(store).items()} == before
    assert git_diff(small) == ""  # dvc.lock as it was
    assert "Data and pipelines are up to date" in subprocess.run(["dvc", "status"], cwd=small, env=ENV,
                                                                 capture_output=True, text=True).stdout


def test_verify_names_rows_that_disagree_with_the_frames_and_nan_features(small):
    labels = small / "data/labels/climb2_face.csv"
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:-5]))
    group = zarr.open_group(str(small / STORE), mode="r+")
    values = group["features"][:]
    values[3, 7] = np.nan
    group["features"][:] = values
    r = bs("verify", "climb2_face", cwd=small)
    failed_with(r, "`boulderseg verify --fix climb2_face` reruns labels@climb2_face, "
                   "features-pytorchvideo@climb2_face-x3d_xs.")
    assert "climb2_face: data/labels/climb2_face.csv: 245 rows, the frames are 250 (rebuilt by labels@climb2_face)" in r.stdout
    assert f"climb2_face: {STORE}: 1 NaN/Inf values (rebuilt by features-pytorchvideo@climb2_face-x3d_xs)" in r.stdout
    assert "climb1_face" not in r.stdout


def test_verify_names_stores_made_with_other_params(small):
    set_params(small, lambda p: p["features"].update(stride=4))
    r = bs("verify", cwd=small)
    failed_with(r)
    for key in ("climb1_face", "climb2_face"):
        assert (f"{key}: features/x3d_xs/{key}.zarr: frame_range does not cover the 250 frames in 16-frame windows "
                f"every 4 (rebuilt by features-pytorchvideo@{key}-x3d_xs)") in r.stdout
        assert f"{key}: features/x3d_xs/{key}.zarr: stride: stored 8, expected 4" in r.stdout


def test_verify_of_an_unknown_video_names_the_known_ones(small):
    failed_with(bs("verify", "climb9", cwd=small), "no video climb9 in params.yaml; the tables list climb1_face, "
                "climb2_face.")


def test_an_input_deleted_after_a_clean_run_is_named(small):
    video = small / "data/raw/videos/climb1_face.mp4"
    video.unlink()
    r = subprocess.run(["dvc", "repro"], cwd=small, env=ENV, capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr == (f"ERROR: failed to reproduce 'labels@climb1_face': [Errno 2] No such file "
                                              f"or directory: '{video}'\n")
    failed_with(bs("stage", "frames", str(video), "out", cwd=small), f"{video}: video file not found. Check the path")
    assert not (small / "out").exists()


def test_two_repros_at_once_the_second_gets_dvcs_busy_message_unchanged_and_status_still_answers(small):
    first = subprocess.Popen(["dvc", "repro", "--force", "persons@climb1_face"], cwd=small, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    while "Running stage" not in seen and first.poll() is None:
        seen += first.stdout.readline()
    second = subprocess.run(["dvc", "repro"], cwd=small, env=ENV, capture_output=True, text=True)
    status = bs("status", cwd=small)
    first.communicate(timeout=600)
    assert first.returncode == 0
    lock = [" is busy, it is being blocked by:", f"(PID {first.pid}): ", "dvc repro --force persons@climb1_face",
            "If there are no processes with such PIDs, you can manually remove", ".dvc/tmp/rwlock' and try again."]
    assert second.returncode != 0 and all(words in second.stderr for words in lock), second.stderr
    assert status.returncode == 0, status.stderr  # what a user asks while a repro runs: the stale stages unknown
    assert status.stdout.count("unknown (DVC is busy)") == 3  # each video's row and the aggregate stages


def test_ctrl_c_then_kill_in_training_leave_the_bundle_and_a_rerun_matches(small):
    bundle_dir = small / "models/x3d_xs/lstm"
    bundle, predictions = files(bundle_dir), prediction_bytes(small)
    for sig in (signal.SIGINT, signal.SIGKILL):
        proc = start("train", "x3d_xs", "lstm", cwd=small)
        _, err = signal_when(proc, sig, lambda: any(bundle_dir.parent.glob(".lstm.tmp-*/fold0.pt")))
        if sig == signal.SIGINT:
            interrupted(err)
            assert proc.returncode == 130
        assert files(bundle_dir) == bundle and prediction_bytes(small) == predictions  # the last whole run's
    start("train", "x3d_xs", "lstm", cwd=small).communicate()
    no_temp_left(small / "models")
    assert files(bundle_dir) == bundle and prediction_bytes(small) == predictions


def test_ctrl_c_in_predict_leaves_no_segmentation(small):
    out = small / "segmented"
    proc = start(BOULDERSEG, "predict", "data/raw/videos/climb1_face.mp4", "--model", "models/x3d_xs/linear",
                 "--out", str(out), cwd=small, module=False)
    t = time.monotonic()
    interrupted(signal_when(proc, signal.SIGINT, lambda: time.monotonic() - t > 4)[1])
    assert proc.returncode == 130
    assert not (out / "segments.csv").exists() and not (out / "segments.xlsx").exists()
    no_temp_left(small)
    r = bs("predict", "data/raw/videos/climb1_face.mp4", "--model", "models/x3d_xs/linear", "--out", str(out), cwd=small)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "report.json").read_text())["phases"]
