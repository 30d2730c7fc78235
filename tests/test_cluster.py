"""`boulderseg repro --workers N`: DVC's stale stages on a local Dask cluster give the dvc.lock a serial run gives."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from clusterkit import worker_processes
from e2e import BOULDERSEG, ENV, REPO, SMALL_HEADS, copy_of, each_video, set_params, sh, stages_done, stages_run
from pipeline.core.errors import INTERRUPTED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stale(small_run, tmp_path_factory) -> tuple[Path, set[str], bytes]:
    """The two-video project with every per-video stage but labels stale; the stages a serial `dvc repro` runs
    on it and the dvc.lock it writes."""
    root = copy_of(small_run, tmp_path_factory.mktemp("stale"))
    set_params(root, lambda p: p["frames"].update(jpg_quality=85))
    serial = copy_of((root, ""), tmp_path_factory.mktemp("serial"))
    return root, stages_run(sh("dvc", "repro", cwd=serial)), (serial / "dvc.lock").read_bytes()


def start(root: Path) -> subprocess.Popen:
    """`boulderseg repro --workers 2` in its own process group, with Ctrl-C's default action."""
    return subprocess.Popen([BOULDERSEG, "repro", "--workers", "2"], cwd=root, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def first_done(proc: subprocess.Popen) -> list[str]:
    """The driver's lines up to and including its first `done:`."""
    lines = []
    while not lines or not lines[-1].startswith("done: "):
        line = proc.stdout.readline()
        assert line, f"the run ended before any stage was done: {proc.stderr.read()[-3000:]}"
        lines.append(line.rstrip("\n"))
    return lines


def test_stale_stages_on_two_workers_write_the_serial_runs_dvc_lock_byte_for_byte(stale, tmp_path):
    root, ran, serial_lock = stale
    project = copy_of((root, ""), tmp_path)
    out = sh(BOULDERSEG, "repro", "--workers", "2", cwd=project)
    assert stages_done(out) == ran and "Updating lock file" not in out
    assert (project / "dvc.lock").read_bytes() == serial_lock
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=project)
    assert stages_run(sh("dvc", "repro", cwd=project)) == set()
    assert "nothing to run: every stage is up to date." in sh(BOULDERSEG, "repro", "--workers", "2", cwd=project)


def test_adding_one_video_runs_only_its_stages_and_the_aggregates(small, tmp_path):
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())["videos"]
    set_params(small, lambda p: p["videos"].update(climb3_face=shipped["climb3_face"]))
    (tmp_path / "serial").mkdir()
    serial = copy_of((small, ""), tmp_path / "serial")
    ran = stages_run(sh("dvc", "repro", cwd=serial))
    new = set().union(*(each_video(s, ["climb3_face"]) for s in ("labels", "frames", "persons", "features-pytorchvideo")))
    assert new < ran and not any("climb1" in s or "climb2" in s for s in ran)
    assert stages_done(sh(BOULDERSEG, "repro", "--workers", "2", cwd=small)) == ran
    # The new video's entries are appended in the order its stages finished; the contents are the serial run's.
    assert yaml.safe_load((small / "dvc.lock").read_text()) == yaml.safe_load((serial / "dvc.lock").read_text())
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=small)


def running_stage(pid: int) -> str | None:
    """The stage a worker is running in itself: its stdout is the stage's log, named after the stage."""
    try:
        target = os.readlink(f"/proc/{pid}/fd/1")
    except OSError:
        return None
    m = re.search(r"/boulderseg-stage-(.+)-[^-/ ]+(?: \(deleted\))?$", target)
    return m[1] if m else None


def test_a_worker_killed_mid_stage_is_replaced_and_the_stage_reruns(stale, tmp_path):
    root, ran, serial_lock = stale
    project = copy_of((root, ""), tmp_path)
    proc = start(project)
    deadline = time.monotonic() + 300
    while True:  # a worker caught inside a stage
        workers = worker_processes(proc.pid)
        busy = [(w, running_stage(w.pid)) for w in workers if running_stage(w.pid)]
        if busy:
            break
        assert time.monotonic() < deadline and proc.poll() is None, "no worker was ever seen running a stage"
        time.sleep(0.05)
    worker, killed = busy[0]
    worker.kill()
    while proc.poll() is None:  # the same stage, running again
        workers = worker_processes(proc.pid)
        if any(running_stage(w.pid) == killed for w in workers if w.pid != worker.pid):
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"{killed} was never seen running again after its worker was killed")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert killed in stages_done(out)
    assert (project / "dvc.lock").read_bytes() == serial_lock
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=project)
    assert not list(project.glob("**/.*.tmp-*"))  # the killed stage's temp output, removed by its rerun


def test_persons_rerun_to_the_same_bytes_leave_the_training_stages_unchanged(small_run, tmp_path):
    project = copy_of(small_run, tmp_path)
    with open(project / "pipeline/persons/hog.py", "a") as f:  # persons' code (feature stores record theirs)
        f.write("# a comment: the persons stages rerun, to the same tables\n")
    (tmp_path / "serial").mkdir()
    serial = copy_of((project, ""), tmp_path / "serial")
    ran = stages_run(sh("dvc", "repro", cwd=serial))
    assert ran == each_video("persons", ["climb1_face", "climb2_face"])
    out = sh(BOULDERSEG, "repro", "--workers", "2", cwd=project)
    assert stages_done(out) == ran
    assert {f"unchanged: train-pytorchvideo@x3d_xs-{h} (its inputs are as recorded)" for h in SMALL_HEADS} <= set(
        out.splitlines())
    assert (project / "dvc.lock").read_bytes() == (serial / "dvc.lock").read_bytes()


def test_ctrl_c_in_the_driver_records_what_finished_and_exits_130(stale, tmp_path):
    root, ran, serial_lock = stale
    project = copy_of((root, ""), tmp_path)
    proc = start(project)
    finished = stages_done("\n".join(first_done(proc)))
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    finished |= stages_done(out)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.splitlines()[-1] == INTERRUPTED
    stale_now = set(yaml.safe_load(sh("dvc", "status", "--json", cwd=project)) or {})
    assert finished and not finished & stale_now and stale_now
    cancelled = re.search(r"^cancelled: (.+?); waiting for their processes to end", out, re.M)
    assert not cancelled or set(cancelled[1].split(", ")) <= stale_now  # named (when one ran), and left stale
    rerun = stages_done(sh(BOULDERSEG, "repro", "--workers", "2", cwd=project))
    assert rerun == ran - finished
    assert (project / "dvc.lock").read_bytes() == serial_lock


def test_a_failing_stage_stops_only_its_descendants_and_the_rerun_finishes(small):
    set_params(small, lambda p: p["frames"].update(jpg_quality=85))
    video = small / "data/raw/videos/climb2_face.mp4"
    kept = video.read_bytes()
    video.write_bytes(b"not a video")  # labels@ and frames@climb2_face fail; climb1_face's stages go on
    r = subprocess.run([BOULDERSEG, "repro", "--workers", "2"], cwd=small, env=ENV, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "2 stage(s) failed" in r.stderr and "frames@climb2_face: exit 1: error: data/raw/videos/climb2_face.mp4: " \
        "cannot decode this video" in r.stderr and "labels@climb2_face: exit 1: " in r.stderr
    assert "not run, downstream of a failure: " in r.stderr and "persons@climb2_face" in r.stderr
    assert {"frames@climb1_face", "persons@climb1_face"} <= stages_done(r.stdout)
    video.write_bytes(kept)
    rerun = stages_done(sh(BOULDERSEG, "repro", "--workers", "2", cwd=small))
    assert {"labels@climb2_face", "frames@climb2_face"} <= rerun and "frames@climb1_face" not in rerun
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=small)


def test_a_dvc_remote_shares_the_results_and_a_clone_rebuilds_only_the_frames(small, tmp_path):
    remote, clone = tmp_path / "remote", tmp_path / "clone"
    sh("dvc", "remote", "add", "-d", "shared", str(remote), cwd=small)  # the README's S3 remote, as a folder
    sh("git", "commit", "-qam", "a shared DVC remote", cwd=small)
    assert "files pushed" in sh("dvc", "push", cwd=small)
    sh("git", "clone", "-q", str(small), str(clone), cwd=tmp_path)
    sh("dvc", "pull", cwd=clone)
    for out in ("data/labels/climb1_face.csv", "data/persons/climb2_face.parquet", "features/x3d_xs/climb1_face.zarr",
                "models/x3d_xs/lstm/bundle.json", "reports/predictions/x3d_xs/lstm.parquet"):
        files = [f.relative_to(small) for f in [small / out, *(small / out).rglob("*")] if f.is_file()]
        assert files and all((clone / f).read_bytes() == (small / f).read_bytes() for f in files), out
    # Frames are not cached (dvc.yaml): they are rebuilt from the videos, to the same bytes, and nothing else runs.
    assert stages_run(sh("dvc", "repro", cwd=clone)) == {"frames@climb1_face", "frames@climb2_face"}
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=clone)
