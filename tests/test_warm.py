"""Per-video stages handed to a warm process give what their own process gives, and fail, die and retire cleanly."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
import zarr

from conftest import REPO
from pipeline.warm import client as warm

WARM_LINE = re.compile(r"stages\.\w+: run by warm process (\d+) \(its job (\d+)\)")


@pytest.fixture
def project(tmp_path, bikes_frames, request) -> Path:
    """params.yaml with random weights and warm_seconds 30; frames/ holds 101 real frames (12 windows)."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["weights"]["pretrained"] = False
    p["features"]["crop"] = "none"  # no persons stage here: the whole frames
    p["runtime"]["warm_seconds"] = 30
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    p["runtime"]["warm_seconds"] = 0
    (tmp_path / "cold.yaml").write_text(yaml.safe_dump(p))
    (tmp_path / "frames").symlink_to(bikes_frames)
    (tmp_path / "env").write_text(request.node.name)  # each test its own server: the environment is in its key
    return tmp_path


def stage_env(project: Path) -> dict[str, str]:
    """The environment a stage of `project` runs with (its server is keyed on it)."""
    return os.environ | {"PYTHONPATH": str(REPO), "BOULDERSEG_TEST": (project / "env").read_text()}


def stage(project: Path, name: str, *args: str, params: str = "params.yaml", wait: bool = True,
          sigint: signal.Handlers = signal.SIG_DFL):
    env = stage_env(project)
    cmd = [sys.executable, "-m", f"stages.{name}", *args, "--params", params]
    if not wait:
        return subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def features(project: Path, out: str, params: str = "params.yaml", backbone: str = "x3d_xs"):
    return stage(project, "features", backbone, "frames", out, "--family", "pytorchvideo", params=params)


def server_of(stderr: str) -> tuple[int, int]:
    """(pid, job number) of the warm process that ran a stage."""
    m = WARM_LINE.search(stderr)
    assert m, f"not run by a warm process:\n{stderr}"
    return int(m[1]), int(m[2])


def until(condition: Callable[[], bool], within: float) -> bool:
    """Whether `condition` came true within `within` seconds (polled)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def gone(pid: int, within: float = 30) -> bool:
    return until(lambda: not psutil.pid_exists(pid), within)


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far (user and system, all its threads)."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


@pytest.fixture(autouse=True)
def stop_servers():
    yield
    warm.stop_all()


def test_stages_run_in_one_warm_process_and_write_what_their_own_process_writes(project):
    persons, cold_persons = (stage(project, "persons", "frames", out, params=params)
                             for out, params in (("p.parquet", "params.yaml"), ("q.parquet", "cold.yaml")))
    assert persons.returncode == cold_persons.returncode == 0, persons.stderr + cold_persons.stderr
    assert (project / "p.parquet").read_bytes() == (project / "q.parquet").read_bytes()
    # after the persons job (ultralytics sets torch to one thread here), features as in a fresh process
    first, second = features(project, "a.zarr"), features(project, "b.zarr")
    cold = features(project, "c.zarr", params="cold.yaml")
    assert first.returncode == second.returncode == cold.returncode == 0, first.stderr + second.stderr + cold.stderr
    (pid, job), (pid2, job2) = server_of(first.stderr), server_of(second.stderr)
    assert pid == pid2 == server_of(persons.stderr)[0] != os.getpid() and (job, job2) == (2, 3)
    assert "warm process" not in cold.stderr
    assert first.stdout == "a.zarr: features (12, 2048)\n"  # the server writes to the client's own stdout
    a, c = zarr.open_group(project / "a.zarr", mode="r"), zarr.open_group(project / "c.zarr", mode="r")
    assert np.array_equal(a["features"][:], c["features"][:]) and a.attrs.asdict() == c.attrs.asdict()


def test_an_error_in_the_warm_process_reads_as_in_the_stages_own_process(project):
    warm_run = stage(project, "features", "x3d_xs", "nowhere", "out.zarr")
    cold_run = stage(project, "features", "x3d_xs", "nowhere", "out.zarr", params="cold.yaml")
    assert warm_run.returncode == cold_run.returncode == 1
    server_of(warm_run.stderr)
    assert WARM_LINE.sub("", warm_run.stderr).strip() == cold_run.stderr.strip() != ""
    assert "nowhere" in cold_run.stderr and not (project / "out.zarr").exists()


# SIG_IGN: the stage started as a background job of a non-interactive shell, which its warm process inherits
@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN])
def test_killing_the_stage_interrupts_its_job_leaves_nothing_and_a_rerun_finishes(project, sigint):
    client = stage(project, "features", "r3d", "frames", "out.zarr", "--family", "pytorchvideo", wait=False,
                   sigint=sigint)
    pid = server_of(client.stderr.readline())[0]
    ticket = cpu_seconds(pid)  # the job is at work (building r3d, or into its batches) once it has spent a CPU second
    assert until(lambda: cpu_seconds(pid) - ticket > 1, within=60), "the job did not get to work in 60 s"
    assert client.poll() is None, "the stage finished before it could be killed: nothing was interrupted"
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    assert gone(pid), "the warm process outlived its killed client"
    assert not (project / "out.zarr").exists() and not list(project.glob(".out.zarr.tmp-*"))
    rerun = stage(project, "features", "r3d", "frames", "out.zarr", "--family", "pytorchvideo")
    assert rerun.returncode == 0 and server_of(rerun.stderr)[0] != pid
    assert zarr.open_group(project / "out.zarr", mode="r")["features"].shape == (12, 2048)


def test_a_dead_servers_socket_is_replaced_by_a_new_server(project):
    pid = server_of(features(project, "a.zarr").stderr)[0]
    os.kill(pid, signal.SIGKILL)
    assert gone(pid)
    again = features(project, "b.zarr")
    assert again.returncode == 0 and server_of(again.stderr)[0] != pid


def test_an_idle_server_exits_and_removes_its_socket(project):
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["runtime"]["warm_seconds"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    before = set(warm.socket_dir().glob("*.sock"))
    pid = server_of(features(project, "a.zarr").stderr)[0]
    assert gone(pid, within=20)
    assert set(warm.socket_dir().glob("*.sock")) <= before


def test_a_server_is_keyed_on_code_and_environment_but_not_on_the_stage_name(tmp_path):
    for d in ("pipeline", "stages"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "__init__.py").write_text("")
    env = {"PATH": "/bin", "OMP_NUM_THREADS": "2", "DVC_STAGE": "features@a"}
    key = warm.server_key(tmp_path, env)
    assert warm.server_key(tmp_path, env | {"DVC_STAGE": "features@b", "PYTEST_CURRENT_TEST": "x"}) == key
    assert warm.server_key(tmp_path, env | {"OMP_NUM_THREADS": "1"}) != key
    (tmp_path / "pipeline" / "features.py").write_text("x = 1\n")
    assert warm.server_key(tmp_path, env) != key
