"""`boulderseg repro` on a cluster under real faults, on toy DVC projects of shell commands: interrupted at random
instants, code edited under long-lived workers, stages `dvc repro` would not run, two projects on one scheduler,
a stage that leaves no output, GPUs, threads and who may connect. Real DVC, Dask, processes and signals."""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from clusterkit import certificate, lock, scheduler, status_is_clean, tls_env, toy, twin, worker_processes

from conftest import REPO
from e2e import BOULDERSEG, ENV, sh, stages_done, stages_run

ITEMS = [f"i{i}" for i in range(50)]
MANY = {  # 100 quick stages and an aggregate: a long dvc.lock, written all the time
    "make": {"foreach": ITEMS, "do": {"cmd": "echo ${item} > make-${item}.txt", "outs": ["make-${item}.txt"]}},
    "copy": {"foreach": ITEMS, "do": {"cmd": "cat make-${item}.txt > copy-${item}.txt", "deps": ["make-${item}.txt"],
                                      "outs": ["copy-${item}.txt"]}},
    "all": {"cmd": "cat copy-*.txt > all.txt", "deps": [f"copy-{i}.txt" for i in ITEMS], "outs": ["all.txt"]},
}


def repro(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BOULDERSEG, "repro", *args], cwd=root, env=ENV, capture_output=True, text=True, timeout=600)


def interrupt(root: Path, how: signal.Signals, *, after_s: float = 0.0, at_write: int = 0,
              watch: str = "dvc.lock") -> tuple[int, str]:
    """`boulderseg repro --workers 2` in `root`, sent `how` (to its whole process group, as a terminal's Ctrl-C or
    a machine going down) `after_s` seconds in, or at the instant the file `watch` is seen changing for the
    `at_write`-th time: (exit code, stderr)."""
    proc = subprocess.Popen([BOULDERSEG, "repro", "--workers", "2"], cwd=root, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    path, last, changes, start = root / watch, None, 0, time.monotonic()
    while proc.poll() is None:
        if at_write:
            try:
                st = path.stat()
                now = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                now = None
            changes += now != last
            last = now
            if changes > at_write:
                break
        elif time.monotonic() - start > after_s:
            break
        time.sleep(0.0005)
    if proc.poll() is None:
        os.killpg(proc.pid, how)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_interrupted_at_any_instant_dvc_lock_is_always_whole_and_the_rerun_ends_as_the_serial_run(tmp_path):
    root = toy(tmp_path / "toy", MANY)
    serial = twin(root, tmp_path / "serial")
    sh("dvc", "repro", cwd=serial)
    rng = random.Random(25)
    for attempt in range(6):
        how = (signal.SIGINT, signal.SIGKILL)[attempt % 2]
        if attempt < 2:  # the moment dvc.lock changes: an in-place write is then seen half-done
            rc, err = interrupt(root, how, at_write=rng.randint(2, 8))
        elif attempt < 4:  # the moment DVC's rwlock changes: it is written for every stage checked or recorded
            rc, err = interrupt(root, how, at_write=rng.randint(20, 200), watch=".dvc/tmp/rwlock")
        else:  # anywhere from the cluster's start to the last records
            rc, err = interrupt(root, how, after_s=rng.uniform(2.0, 7.0))
        assert "Traceback" not in err, err[-3000:]
        # -SIGINT: the Ctrl-C landed as the finished driver's interpreter was exiting, after Python had given
        # SIGINT back its default action (seen once, under load, 2026-12-05); what it recorded is checked below
        assert rc in (0, 130, -signal.SIGKILL, -signal.SIGINT), err[-3000:]
        recorded = lock(root).get("stages", {})  # parses: the previous or the new dvc.lock, whole
        assert all(entry == lock(serial)["stages"][name] for name, entry in recorded.items())
        assert subprocess.run(["dvc", "status"], cwd=root, env=ENV, capture_output=True).returncode == 0
        if attempt < 2:
            (root / "dvc.lock").unlink(missing_ok=True)  # start over: the next write is again a large one
    rerun = repro(root, "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert lock(root) == lock(serial) and status_is_clean(root)


def test_a_worker_running_older_code_runs_the_edited_stage_in_a_fresh_process(tmp_path):
    root = tmp_path / "project"
    files = {"pipeline/probe.py": 'VALUE = "old"\n',
             "stages/probe.py": "from pathlib import Path\n\nfrom pipeline import probe\n\n"
                                'Path("probe.txt").write_text(probe.VALUE)\n'}
    stages = {"probe": {"cmd": "python -m stages.probe", "deps": ["pipeline/probe.py", "stages/probe.py", "params.yaml"],
                        "outs": ["probe.txt"]}}
    toy(root, stages, files | {"params.yaml": "round: 1\n"})
    for d in ("pipeline", "stages"):
        for f in (REPO / d).rglob("*.py"):
            if not (root / f.relative_to(REPO)).exists():
                (root / f.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, root / f.relative_to(REPO))
    worker = {"name": "w", "cwd": str(root), "env": {"PYTHONPATH": str(root)}}  # it imports this checkout's code
    with scheduler(tmp_path, worker) as address:
        first = repro(root, "--scheduler", address)
        assert first.returncode == 0 and (root / "probe.txt").read_text() == "old", first.stderr
        assert "fresh process" not in first.stdout  # run in the worker, which imported pipeline.probe
        (root / "pipeline/probe.py").write_text('VALUE = "new"\n')
        second = repro(root, "--scheduler", address)
        assert second.returncode == 0, second.stderr
        assert (root / "probe.txt").read_text() == "new"
        assert "done: probe (in a fresh process: the worker's loaded code differs from the checkout's)" in second.stdout
    assert status_is_clean(root)


def test_data_sources_and_frozen_stages_are_left_as_dvc_repro_leaves_them(tmp_path):
    stages = {"use": {"cmd": "cat raw.txt > use.txt", "deps": ["raw.txt"], "outs": ["use.txt"]},
              "cold": {"cmd": "cat src.txt > cold.txt", "deps": ["src.txt"], "outs": ["cold.txt"]},
              "after": {"cmd": "cat cold.txt use.txt > after.txt", "deps": ["cold.txt", "use.txt"],
                        "outs": ["after.txt"]}}
    root = toy(tmp_path / "toy", stages, {"raw.txt": "raw 1\n", "src.txt": "src 1\n"})
    sh("dvc", "add", "-q", "raw.txt", cwd=root)
    sh("dvc", "repro", "-q", cwd=root)
    sh("dvc", "freeze", "cold", cwd=root)
    (root / "raw.txt").write_text("raw 2\n")  # a changed data source: dvc repro verifies it and records it
    (root / "src.txt").write_text("src 2\n")  # a frozen stage's dependency: dvc repro leaves the stage alone
    serial = twin(root, tmp_path / "serial")
    sh("dvc", "repro", cwd=serial)
    r = repro(root, "--workers", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ("raw.txt", "raw.txt.dvc", "cold.txt", "use.txt", "after.txt"):
        assert (root / f).read_text() == (serial / f).read_text(), f
    assert (root / "raw.txt").read_text() == "raw 2\n" and (root / "cold.txt").read_text() == "src 1\n"
    assert lock(root) == lock(serial) and status_is_clean(root)
    assert stages_done(r.stdout) == {"raw.txt.dvc", "use", "after"} and "cold" not in r.stdout


def test_an_upstream_rerun_with_identical_output_leaves_the_downstream_stages_unchanged(tmp_path):
    stages = {"first": {"cmd": "cut -c1 in.txt > first.txt", "deps": ["in.txt"], "outs": ["first.txt"]},
              "slow": {"cmd": "sleep 1 && cat first.txt > slow.txt", "deps": ["first.txt"], "outs": ["slow.txt"]}}
    root = toy(tmp_path / "toy", stages, {"in.txt": "ab\n"})
    sh("dvc", "repro", "-q", cwd=root)
    (root / "in.txt").write_text("az\n")  # `first` reruns and writes the same "a"
    serial = twin(root, tmp_path / "serial")
    assert stages_run(sh("dvc", "repro", cwd=serial)) == {"first"}
    r = repro(root, "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert stages_done(r.stdout) == {"first"} and "unchanged: slow (its inputs are as recorded)" in r.stdout
    assert lock(root) == lock(serial) and status_is_clean(root)


def test_two_projects_with_the_same_stage_names_share_one_scheduler(tmp_path):
    barrier = tmp_path / "barrier"  # each project's stage `make@a` waits (up to 30 s) until both have started it
    barrier.mkdir()
    wait = (f"touch {barrier}/$(cat name.txt); for i in $(seq 300); do [ $(ls {barrier} | wc -l) -ge 2 ] && break; "
            "sleep 0.1; done")
    wait = f"if [ ${{item}} = a ]; then {wait}; fi"  # the others leave a worker free for the other project
    stages = {"make": {"foreach": ["a", "b", "c"], "do": {"cmd": f"{wait}; cat name.txt > make-${{item}}.txt",
                                                          "deps": ["name.txt"], "outs": ["make-${item}.txt"]}},
              "all": {"cmd": "cat make-a.txt make-b.txt make-c.txt > all.txt",
                      "deps": ["make-a.txt", "make-b.txt", "make-c.txt"], "outs": ["all.txt"]}}
    roots = [toy(tmp_path / name, stages, {"name.txt": f"{name}\n"}) for name in ("one", "two")]
    serials = [twin(r, tmp_path / f"serial-{r.name}") for r in roots]
    (barrier / "serial").touch()  # a serial run has no other to wait for
    for s in serials:
        sh("dvc", "repro", "-q", cwd=s)
    shutil.rmtree(barrier)
    barrier.mkdir()
    with scheduler(tmp_path, {"name": "0"}, {"name": "1"}) as address:
        runs = [subprocess.Popen([BOULDERSEG, "repro", "--scheduler", address], cwd=r, env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in roots]
        results = [p.communicate(timeout=300) + (p.returncode,) for p in runs]
    assert sorted(p.name for p in barrier.iterdir()) == ["one", "two"]  # the two runs overlapped
    for root, serial, (out, err, rc) in zip(roots, serials, results):
        assert rc == 0, err[-3000:]
        assert (root / "all.txt").read_text() == f"{root.name}\n" * 3
        assert lock(root) == lock(serial) and status_is_clean(root)


def test_a_stage_that_exits_0_without_its_output_fails_alone(tmp_path):
    stages = {"empty": {"cmd": "true", "outs": ["empty.txt"]},
              "needs": {"cmd": "cat empty.txt > needs.txt", "deps": ["empty.txt"], "outs": ["needs.txt"]},
              "fine": {"foreach": ["a", "b"], "do": {"cmd": "sleep 1 && echo ${item} > fine-${item}.txt",
                                                     "outs": ["fine-${item}.txt"]}}}
    root = toy(tmp_path / "toy", stages)
    r = repro(root, "--workers", "2")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.search(r"1 stage\(s\) failed; 2 done and recorded; not run, downstream of a failure: needs:\n"
                     r"  empty: recording it failed: .*empty.txt", r.stderr), r.stderr
    assert stages_done(r.stdout) == {"fine@a", "fine@b"} and set(lock(root)["stages"]) == {"fine@a", "fine@b"}


def test_gpus_are_assigned_within_what_each_worker_was_started_with(tmp_path):
    """Two GPUs shown by an nvidia-smi on PATH (the one thing that cannot exist here)."""
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'GPU 0: fake (UUID: GPU-0)'\necho 'GPU 1: fake (UUID: GPU-1)'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    path = {"PATH": f"{smi.parent}{os.pathsep}{ENV['PATH']}", "TMPDIR": str(tmp_path)}  # GPU locks of its own
    stages = {"features-toy": {"foreach": [f"i{i}" for i in range(6)], "do": {
        "cmd": 'sleep 0.5 && echo "$CUDA_VISIBLE_DEVICES" > gpu-${item}.txt', "outs": ["gpu-${item}.txt"]}}}

    def devices(*workers: dict) -> dict[str, set[str]]:
        root = toy(tmp_path / f"toy-{len(list(tmp_path.iterdir()))}", stages)
        with scheduler(tmp_path, *workers) as address:
            from distributed import Client, get_task_stream
            with Client(address) as client, get_task_stream(client) as tasks:
                assert repro(root, "--scheduler", address).returncode == 0
                names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        seen: dict[str, set[str]] = {}
        for t in tasks.data:
            item = t["key"].rsplit("@", 1)[1]
            seen.setdefault(str(names[t["worker"]]), set()).add((root / f"gpu-{item}.txt").read_text().strip())
        return seen

    gpu = {"resources": "GPU=1", "env": path}
    named = devices({"name": "left"} | gpu, {"name": "right"} | gpu)  # each claims a GPU the other does not hold
    assert named.keys() == {"left", "right"}, named  # six half-second tasks, one at a time per worker: both ran
    assert named["left"] | named["right"] == {"0", "1"} and all(len(v) == 1 for v in named.values())
    slurm = devices({"name": "0", "env": path | {"CUDA_VISIBLE_DEVICES": "5"}} | {"resources": "GPU=1"},
                    {"name": "1", "env": path | {"CUDA_VISIBLE_DEVICES": "7"}} | {"resources": "GPU=1"})
    assert slurm == {"0": {"5"}, "1": {"7"}}


def test_a_scheduler_whose_workers_run_several_threads_is_refused(tmp_path):
    root = toy(tmp_path / "toy", {"one": {"cmd": "echo 1 > one.txt", "outs": ["one.txt"]}})
    with scheduler(tmp_path, {"name": "wide", "nthreads": 2}) as address:
        r = repro(root, "--scheduler", address)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"Start them as `dask worker {address} --nthreads 1`" in r.stderr and "wide (2 threads)" in r.stderr
    assert not (root / "one.txt").exists() and not (root / "dvc.lock").exists()


def test_the_local_cluster_speaks_tls_only(tmp_path):
    from distributed import Client
    from distributed.security import Security

    from pipeline.cluster.driver import client_for

    with client_for(workers=1, scheduler=None) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert all(a.startswith("tls://127.0.0.1:") for a in client.scheduler_info()["workers"])
        with pytest.raises((OSError, TimeoutError)):
            Client(address.replace("tls://", "tcp://"), timeout=3)  # a plain-TCP client: no handshake
        with pytest.raises((OSError, TimeoutError)):
            Client(address, security=Security.temporary(), timeout=3)  # TLS, with credentials not the run's


def test_a_scheduler_on_tls_with_the_users_certificate_as_the_readme_shows(tmp_path):
    root = toy(tmp_path / "toy", {"one": {"cmd": "echo 1 > one.txt", "outs": ["one.txt"]}})
    cert, key = certificate(tmp_path / "tls")
    with scheduler(tmp_path, {"name": "0"}, tls=(cert, key)) as address:
        assert address.startswith("tls://")
        plain = repro(root, "--scheduler", address.replace("tls://", "tcp://"))
        assert plain.returncode == 1 and not (root / "one.txt").exists() and "Traceback" not in plain.stderr
        assert f"cannot connect to the Dask scheduler at {address.replace('tls://', 'tcp://')}" in plain.stderr
        bare = repro(root, "--scheduler", address)  # TLS, but no certificate configured
        assert bare.returncode == 1 and "DASK_DISTRIBUTED__COMM__TLS__" in bare.stderr, bare.stderr
        r = subprocess.run([BOULDERSEG, "repro", "--scheduler", address], cwd=root, env=ENV | tls_env(cert, key),
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert stages_done(r.stdout) == {"one"} and status_is_clean(root)


def test_a_downstream_stage_starts_only_once_its_upstream_is_relinked(tmp_path):
    stages = {"up": {"foreach": ["a", "b", "c"], "do": {"cmd": "echo ${item} > up-${item}.txt",
                                                        "outs": ["up-${item}.txt"]}},
              "down": {"foreach": ["a", "b", "c"], "do": {
                  "cmd": "if test -L up-${item}.txt; then echo link; else echo file; fi > down-${item}.txt",
                  "deps": ["up-${item}.txt"], "outs": ["down-${item}.txt"]}}}
    root = toy(tmp_path / "toy", stages)
    sh("dvc", "config", "cache.type", "symlink", cwd=root)
    serial = twin(root, tmp_path / "serial")
    sh("dvc", "repro", cwd=serial)
    assert repro(root, "--workers", "2").returncode == 0
    assert {(root / f"down-{i}.txt").read_text() for i in "abc"} == {"link\n"} == {
        (serial / f"down-{i}.txt").read_text() for i in "abc"}
    assert lock(root) == lock(serial)


def test_an_uncached_output_stays_out_of_the_cache_as_in_dvc_repro(tmp_path):
    stages = {"frames": {"cmd": "mkdir -p frames && echo 1 > frames/a && echo 2 > frames/b",
                         "outs": [{"frames": {"cache": False}}]},
              "count": {"cmd": "ls frames | wc -l > count.txt", "deps": ["frames"], "outs": ["count.txt"]}}
    root = toy(tmp_path / "toy", stages)
    serial = twin(root, tmp_path / "serial")
    sh("dvc", "repro", cwd=serial)
    assert repro(root, "--workers", "1").returncode == 0

    def cached(project: Path) -> list[str]:
        return sorted(str(f.relative_to(project / ".dvc/cache")) for f in (project / ".dvc/cache").rglob("*")
                      if f.is_file())

    assert cached(root) == cached(serial) and len(cached(serial)) == 2  # count.txt, and its run-cache entry
    assert lock(root) == lock(serial)


def test_restarted_workers_ignore_the_terminals_ctrl_c_too(tmp_path):
    stages = {"make": {"foreach": [f"i{i}" for i in range(8)],
                       "do": {"cmd": "sleep 1 && echo ${item} > make-${item}.txt", "outs": ["make-${item}.txt"]}}}
    root = toy(tmp_path / "toy", stages)
    proc = subprocess.Popen([BOULDERSEG, "repro", "--workers", "2"], cwd=root, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)

    def workers() -> list:
        return worker_processes(proc.pid)

    deadline = time.monotonic() + 60
    while len(workers()) < 2 or not (root / "dvc.lock").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    first = workers()
    first[0].kill()
    while len(new := [w for w in workers() if w.pid not in {p.pid for p in first}]) < 1:
        assert time.monotonic() < deadline + 60 and proc.poll() is None
        time.sleep(0.1)

    def ignores_sigint(pid: int) -> bool:
        ignored = int(re.search(r"SigIgn:\s*([0-9a-f]+)", Path(f"/proc/{pid}/status").read_text())[1], 16)
        return bool(ignored & (1 << (signal.SIGINT - 1)))

    deadline = time.monotonic() + 30  # the restarted worker registers, then gets the plugin
    while not ignores_sigint(new[0].pid):
        assert time.monotonic() < deadline, "the restarted worker would die of a terminal Ctrl-C"
        time.sleep(0.1)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert yaml.safe_load((root / "dvc.lock").read_text())["stages"].keys() == {f"make@i{i}" for i in range(8)}
