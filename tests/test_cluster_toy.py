"""The cluster driver on a toy DVC pipeline of shell commands: where each stage kind runs, and DVC's record."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from distributed import Client, Scheduler, SpecCluster, Worker, get_task_stream
from dvc.repo import Repo, lock_repo

from e2e import BOULDERSEG, ENV, sh, stages_done, stages_run
from pipeline.cluster.driver import execute, uses_gpu
from pipeline.cluster.dvcrun import plan

STAGES = {
    "frames": {"foreach": ["a", "b"], "do": {"cmd": "echo ${item} > frames-${item}.txt",
                                             "outs": ["frames-${item}.txt"]}},
    "persons": {"foreach": ["a", "b"], "do": {"cmd": "cat frames-${item}.txt > persons-${item}.txt",
                                              "deps": ["frames-${item}.txt"], "outs": ["persons-${item}.txt"]}},
    "features-toy": {"foreach": ["a", "b"], "do": {"cmd": "cat persons-${item}.txt > features-${item}.txt",
                                                   "deps": ["persons-${item}.txt"], "outs": ["features-${item}.txt"]}},
    "train": {"cmd": "cat features-a.txt features-b.txt > model.txt", "deps": ["features-a.txt", "features-b.txt"],
              "outs": ["model.txt"]},
}


def toy(root: Path) -> Path:
    root.mkdir()
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": STAGES}, sort_keys=False))
    sh("git", "init", "-q", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    return root


@pytest.fixture
def gpu_and_cpu_worker():
    """An in-process cluster on loopback: one worker with a GPU resource, one without."""
    spec = {"cls": Worker, "options": {"nthreads": 1, "host": "127.0.0.1"}}
    workers = {"gpu": spec | {"options": spec["options"] | {"resources": {"GPU": 1}, "name": "gpu"}},
               "cpu": spec | {"options": spec["options"] | {"name": "cpu"}}}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, Client(cluster) as client:
        yield client


def test_stage_kinds_that_want_a_gpu():
    assert [uses_gpu(s) for s in ("persons@a", "persons-unannotated@a", "features-pytorchvideo@a-x3d_xs",
                                  "features-pixels-unannotated@a-pixels")] == [True] * 4
    assert not any(uses_gpu(s) for s in ("frames@a", "labels@a", "train-pytorchvideo@x3d_xs-lstm", "stats", "evaluate"))


def test_persons_and_features_go_to_the_gpu_worker_and_dvc_records_what_a_serial_run_records(
        tmp_path, monkeypatch, gpu_and_cpu_worker):
    client = gpu_and_cpu_worker
    root, serial = toy(tmp_path / "toy"), toy(tmp_path / "serial")
    ran = stages_run(sh("dvc", "repro", cwd=serial))
    monkeypatch.chdir(root)  # as `boulderseg repro` runs: in the project
    repo = Repo(".")
    with lock_repo(repo), get_task_stream(client) as tasks:
        todo = plan(repo)
        outcome = execute(todo, client, {}, say=lambda line: None)
    assert set(outcome.done) == set(todo.order) == ran and not outcome.failed
    names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}
    where = {t["key"].split("-", 2)[2]: names[t["worker"]] for t in tasks.data}
    assert {s for s, w in where.items() if uses_gpu(s)} == {"persons@a", "persons@b", "features-toy@a", "features-toy@b"}
    assert all(where[s] == "gpu" for s in where if uses_gpu(s))
    assert yaml.safe_load((root / "dvc.lock").read_text()) == yaml.safe_load((serial / "dvc.lock").read_text())
    assert subprocess.run(["dvc", "status", "-q"], cwd=root, env=ENV).returncode == 0
    assert (root / "model.txt").read_text() == "a\nb\n"


def test_boulderseg_repro_on_an_existing_scheduler(tmp_path, gpu_and_cpu_worker):
    root = toy(tmp_path / "toy")
    out = sh(BOULDERSEG, "repro", "--scheduler", gpu_and_cpu_worker.scheduler.address, cwd=root)
    assert stages_done(out) == {f"{s}@{i}" for s in ("frames", "persons", "features-toy") for i in "ab"} | {"train"}
    assert subprocess.run(["dvc", "status", "-q"], cwd=root, env=ENV).returncode == 0
    assert "nothing to run" in sh(BOULDERSEG, "repro", "--scheduler", gpu_and_cpu_worker.scheduler.address, cwd=root)
