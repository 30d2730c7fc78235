"""`boulderseg repro --workers N`: DVC's stale stages on a local Dask cluster give the dvc.lock a serial run gives."""
from __future__ import annotations

import subprocess

import pytest

from e2e import BOULDERSEG, ENV, set_params, sh, stages_run

pytestmark = pytest.mark.slow


def test_stale_stages_on_two_workers_write_the_serial_runs_dvc_lock_byte_for_byte(small, tmp_path):
    set_params(small, lambda p: p["frames"].update(jpg_quality=85))  # every per-video stage but labels is stale
    serial = tmp_path / "serial"
    subprocess.run(["cp", "-a", str(small), str(serial)], check=True)
    ran = stages_run(sh("dvc", "repro", cwd=serial))
    out = sh(BOULDERSEG, "repro", "--workers", "2", cwd=small)
    assert {line.removeprefix("done: ") for line in out.splitlines() if line.startswith("done: ")} == ran
    assert (small / "dvc.lock").read_bytes() == (serial / "dvc.lock").read_bytes()
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=small)
    assert stages_run(sh("dvc", "repro", cwd=small)) == set()
    assert "nothing to run: every stage is up to date." in sh(BOULDERSEG, "repro", "--workers", "2", cwd=small)


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
    assert {"frames@climb1_face", "persons@climb1_face"} <= {
        line.removeprefix("done: ") for line in r.stdout.splitlines() if line.startswith("done: ")}
    video.write_bytes(kept)
    out = sh(BOULDERSEG, "repro", "--workers", "2", cwd=small)
    done = {line.removeprefix("done: ") for line in out.splitlines() if line.startswith("done: ")}
    assert {"labels@climb2_face", "frames@climb2_face"} <= done and "frames@climb1_face" not in done
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=small)
