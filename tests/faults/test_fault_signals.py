"""Ctrl-C and SIGKILL during each stage: exit 130 with one line and nothing partial; after a SIGKILL the
rerun gives the files an uninterrupted run gives."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import pandas as pd
import pytest
import yaml
from cliproject import project
from kit import files, no_temp_left

from conftest import REPO
from pipeline.core.errors import INTERRUPTED

FEATURES = ("x3d_xs", "frames", "out.zarr", "--family", "pytorchvideo")


def start(*args: str, cwd: Path, module: bool = True) -> subprocess.Popen:
    """A stage as DVC runs it, in its own process group with Ctrl-C's default action (a shell running the
    tests in the background may have passed SIGINT on as ignored)."""
    cmd = [sys.executable, "-m", f"stages.{args[0]}", *args[1:]] if module else list(args)
    return subprocess.Popen(cmd, cwd=cwd, env=os.environ | {"PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run(*args: str, cwd: Path) -> float:
    """Run a stage to the end; its wall time."""
    t = time.monotonic()
    proc = start(*args, cwd=cwd)
    out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return time.monotonic() - t


def signal_when(proc: subprocess.Popen, sig: int, ready) -> tuple[str, str]:
    """Send `sig` to the stage's process group (as a terminal's Ctrl-C does) once `ready()`; its output."""
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the stage finished before the signal"
    os.killpg(proc.pid, sig)
    return proc.communicate(timeout=120)


def interrupted(err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert err.splitlines()[-1] == INTERRUPTED and err.count("interrupted") == 1, err


@pytest.fixture(scope="module")
def one_video(tmp_path_factory, bikes) -> tuple[Path, dict[str, float]]:
    """bikes.mp4 as the project's one video (each stage in its own process), its frames, persons and features
    from uninterrupted runs, and how long each stage took."""
    root = project(tmp_path_factory.mktemp("signals"), bikes)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["weights"]["pretrained"], p["frames"]["short_side"], p["runtime"]["warm_seconds"] = False, 136, 0
    p["features"]["crop"] = "none"  # its features stage runs without the persons parquet: the whole frames
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-stream_loop", "9", "-i", "videos/clip.mp4",
                    "-c", "copy", "long.mp4"], cwd=root, check=True)  # 100 s: long enough to stop midway
    took = {"frames": run("frames", "videos/clip.mp4", "frames", cwd=root),
            "persons": run("persons", "frames", "clean.parquet", cwd=root)}
    # features: the faster of two runs (the first also fills the disk cache with the model's modules), so that
    # 0.6 of it is midway through any later run, not after its end
    first = run("features", *FEATURES[:2], "warmup.zarr", *FEATURES[3:], cwd=root)
    took["features"] = min(first, run("features", *FEATURES[:2], "clean.zarr", *FEATURES[3:], cwd=root))
    return root, took


def test_ctrl_c_in_frames(one_video):
    root, _ = one_video
    proc = start("frames", "long.mp4", "out", cwd=root)
    interrupted(signal_when(proc, signal.SIGINT, lambda: len(list(root.glob(".out.tmp-*/*.jpg"))) > 50)[1])
    assert proc.returncode == 130 and not (root / "out").exists()
    no_temp_left(root)


@pytest.mark.parametrize("stage, args, out", [
    ("persons", ("frames", "out.parquet"), "out.parquet"),
    ("features", FEATURES, "out.zarr"),
])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_ctrl_c_or_kill_midway_then_a_rerun_matches_an_uninterrupted_run(one_video, stage, args, out, sig):
    root, took = one_video
    t = time.monotonic()
    proc = start(stage, *args, cwd=root)
    _, err = signal_when(proc, sig, lambda: time.monotonic() - t > 0.6 * took[stage])  # midway through its work
    if sig == signal.SIGINT:
        interrupted(err)
        assert proc.returncode == 130
    assert not (root / out).exists()
    run(stage, *args, cwd=root)
    clean = root / ("clean.parquet" if stage == "persons" else "clean.zarr")
    if clean.is_dir():
        assert files(root / out) == files(clean)
    else:
        assert (root / out).read_bytes() == clean.read_bytes()
    no_temp_left(root)
    shutil.rmtree(root / out) if (root / out).is_dir() else (root / out).unlink()


def test_ctrl_c_in_labels_of_a_long_sheet(one_video):
    root, _ = one_video
    rows = [["grimpe", 20 + i, 0.5] for i in range(100_000)]
    pd.DataFrame(rows, columns=["Action", "Début", "Durée"]).to_csv(root / "long.csv", index=False)
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["videos"]["clip"]["annotation"] = "long.csv"
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    t = time.monotonic()
    proc = start("labels", "clip", "out.csv", cwd=root)
    interrupted(signal_when(proc, signal.SIGINT, lambda: time.monotonic() - t > 3.0)[1])
    assert proc.returncode == 130 and not (root / "out.csv").exists()


def test_ctrl_c_handed_to_a_warm_process(one_video):
    root, _ = one_video
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["runtime"]["warm_seconds"] = 30
    (root / "warm.yaml").write_text(yaml.safe_dump(p))
    proc = start("features", *FEATURES[:2], "warm.zarr", *FEATURES[3:], "--params", "warm.yaml", cwd=root)
    # Once a warm process has the job: one left warm by an earlier test runs it faster than a fresh process.
    while "run by warm process" not in (line := proc.stderr.readline()):
        assert line, "the stage ended before a warm process took it"
    t = time.monotonic()
    _, err = signal_when(proc, signal.SIGINT, lambda: time.monotonic() - t > 0.5)
    interrupted(err)
    assert proc.returncode == 130 and not (root / "warm.zarr").exists()
    deadline = time.monotonic() + 10  # the warm process removes its temp output as it stops the job
    while list(root.glob(".warm.zarr.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    no_temp_left(root)


def test_ctrl_c_while_python_imports_the_stage_is_one_line_too(tmp_path):
    proc = start(sys.executable, "-c", "import stages; raise KeyboardInterrupt", cwd=tmp_path, module=False)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == INTERRUPTED + "\n"
