"""A stage killed midway leaves nothing behind, and a rerun gives the same files as an uninterrupted run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO


def stage(name: str, *args: str, cwd: Path) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", f"stages.{name}", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc: subprocess.Popen, started) -> None:
    """SIGKILL the stage (no cleanup can run) once `started()` shows it is writing."""
    deadline = time.monotonic() + 120
    while not started() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the stage finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def project(tmp_path, bikes) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["weights"]["pretrained"] = False
    params["frames"]["short_side"] = 136
    params["runtime"]["warm_seconds"] = 0  # each stage its own process; killing a warm process's client: test_warm.py
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(bikes, tmp_path / "clip.mp4")
    return tmp_path


def temp_files(folder: Path, name: str) -> list[Path]:
    return list(folder.glob(f".{name}.tmp-*/*"))


def test_killed_frames_stage_leaves_no_output_and_a_rerun_matches(project):
    proc = stage("frames", "clip.mp4", "killed", cwd=project)
    kill_when(proc, lambda: len(temp_files(project, "killed")) > 20)
    assert not (project / "killed").exists()
    assert stage("frames", "clip.mp4", "killed", cwd=project).wait() == 0
    assert stage("frames", "clip.mp4", "whole", cwd=project).wait() == 0
    assert files(project / "killed") == files(project / "whole") and len(files(project / "whole")) == 251
    assert not list(project.glob(".killed.tmp-*"))  # the rerun cleared the dead run's temp folder


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killing_the_frames_stage_alone_ends_its_worker_processes(project):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-stream_loop", "9", "-i", "clip.mp4", "-c", "copy",
                    "long.mp4"], cwd=project, check=True)  # 100 s: the workers are mid-chunk when the stage dies
    proc = stage("frames", "long.mp4", "out", cwd=project)
    deadline = time.monotonic() + 120
    while len(temp_files(project, "out")) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # the stage process only, not its group: as when DVC's child is killed
    proc.wait()
    deadline = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(proc.pid), "worker processes outlived the stage"
    written = len(temp_files(project, "out"))
    time.sleep(0.5)
    assert len(temp_files(project, "out")) == written  # nothing goes on writing into the dead stage's folder


def test_killed_persons_stage_leaves_no_output_and_a_rerun_matches(project):
    assert stage("frames", "clip.mp4", "frames", cwd=project).wait() == 0
    t = time.monotonic()
    assert stage("persons", "frames", "whole.parquet", cwd=project).wait() == 0
    whole = time.monotonic() - t
    proc = stage("persons", "frames", "killed.parquet", cwd=project)
    kill_when(proc, lambda: time.monotonic() - t - whole > 0.6 * whole)  # its output appears only at the end
    assert not (project / "killed.parquet").exists() and not list(project.glob(".killed.parquet.tmp-*"))
    assert stage("persons", "frames", "killed.parquet", cwd=project).wait() == 0
    assert (project / "killed.parquet").read_bytes() == (project / "whole.parquet").read_bytes()
