"""No stage outlives the `boulderseg repro` that started it: the driver alone SIGKILLed or SIGTERMed mid-stage,
one worker SIGKILLed, a stage that ignores Ctrl-C, a driver gone from an external scheduler; after each, no
process of the run is alive and the rerun records what a serial `dvc repro` records. Also DVC's refusals as one
line, and an input edited while its stage runs. Real DVC, Dask, processes and signals, on toy projects."""
from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from clusterkit import lock, scheduler, status_is_clean, toy, twin, worker_processes

from conftest import REPO
from e2e import BOULDERSEG, ENV, sh
from pipeline.cluster import stagelock

N = 24
COUNT = f"for i in $(seq {N}); do echo $i >> count.txt; sleep 0.25; done"  # 6 s of appends: any overlap shows
STAGES = {"count": {"cmd": COUNT, "outs": ["count.txt"]}}
DEAF = {"count": {"cmd": f"trap '' INT; {COUNT}", "outs": ["count.txt"]}}  # ignores Ctrl-C, as do its children
SERIAL = "".join(f"{i}\n" for i in range(1, N + 1))
DRIVERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_driver_left():
    """Whatever a test asserts, its drivers' process groups end with it."""
    yield
    while DRIVERS:
        driver = DRIVERS.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.communicate()


def start(root: Path, *args: str, **streams) -> subprocess.Popen:
    """`boulderseg repro ARGS` in a session of its own, SIGINT not ignored (as from a terminal)."""
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | streams
    DRIVERS.append(subprocess.Popen([BOULDERSEG, "repro", *args], cwd=root, env=ENV, text=True,
                                    start_new_session=True, **streams,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)))
    return DRIVERS[-1]


def stage_processes(root: Path) -> list[psutil.Process]:
    """The stage's shell and its `sleep` (as they run under the guard)."""
    return [p for p in of_run(root) if p.name() in ("sh", "sleep")]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def until(ready, what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def of_run(root: Path) -> list[psutil.Process]:
    """The live processes working in project `root` (the driver, its workers, the stages and what they start)."""
    found = []
    for p in psutil.process_iter(["cwd", "status"]):
        if p.pid != os.getpid() and p.info["status"] != psutil.STATUS_ZOMBIE and p.info["cwd"] \
                and Path(p.info["cwd"]).is_relative_to(root):
            found.append(p)
    return found


def none_left(root: Path, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while left := of_run(root):
        if time.monotonic() > deadline:
            pytest.fail(f"left alive: {[(p.pid, p.name(), p.cmdline()) for p in left]}")
        time.sleep(0.05)


def ends_as_serial(root: Path, serial: Path) -> None:
    """Run again at once: the rerun succeeds, and what is recorded is byte for byte the serial run's."""
    rerun = subprocess.run([BOULDERSEG, "repro", "--workers", "1"], cwd=root, env=ENV, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    none_left(root)
    assert (root / "count.txt").read_text() == (serial / "count.txt").read_text()
    assert lock(root) == lock(serial) and status_is_clean(root)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    """The toy project after a serial `dvc repro` (6 s of appends), which every test's run must end as."""
    root = toy(tmp_path_factory.mktemp("serial") / "toy", STAGES)
    sh("dvc", "repro", cwd=root)
    assert (root / "count.txt").read_text() == SERIAL
    return root


@pytest.fixture
def project(tmp_path, serial) -> tuple[Path, Path]:
    return toy(tmp_path / "toy", STAGES), serial


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_driver_alone_killed_mid_stage_then_run_again_at_once(project, how):
    root, serial = project
    driver = start(root, "--workers", "1")
    until(lambda: lines(root / "count.txt") >= 2, "the stage to be midway")
    driver.send_signal(how)  # the driver alone: its workers and the stage get nothing from us
    out, err = driver.communicate(timeout=120)
    if how == signal.SIGTERM:  # handled: the run ended, every stage ended, a line said so
        assert driver.returncode == 128 + how and "Traceback" not in err, err[-3000:]
        assert "interrupted by SIGTERM" in err and "cancelled: count" in out
    none_left(root, within=1 if how == signal.SIGTERM else 3)  # SIGKILL: its workers, then their guards, end
    ends_as_serial(root, serial)


def test_a_terminal_hangup_ends_the_run_and_its_stages(project):
    """SIGHUP to the driver alone, whose terminal is gone: a line written to it would fail (EIO)."""
    root, serial = project
    main, tty = pty.openpty()
    driver = start(root, "--workers", "1", stdout=tty, stderr=tty)
    os.close(tty)
    until(lambda: lines(root / "count.txt") >= 2, "the stage to be midway")
    os.close(main)  # the terminal hangs up
    driver.send_signal(signal.SIGHUP)
    assert driver.wait(timeout=120) == 128 + signal.SIGHUP
    none_left(root, within=1)
    ends_as_serial(root, serial)


def test_one_worker_killed_mid_stage_run_in_a_fresh_process(project):
    root, serial = project
    driver = start(root, "--workers", "1")
    until(lambda: lines(root / "count.txt") >= 2, "the stage to be midway")
    (worker,) = worker_processes(driver.pid)
    first = stage_processes(root)
    worker.kill()  # Dask gives the task to the worker the nanny starts again
    assert first and psutil.wait_procs(first, timeout=2)[1] == []  # the first attempt's stage, gone at once
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-3000:]
    assert (root / "count.txt").read_text() == SERIAL and lock(root) == lock(serial) and status_is_clean(root)
    none_left(root)


def test_ctrl_c_with_a_stage_that_ignores_it(tmp_path):
    root = toy(tmp_path / "toy", DEAF)
    serial = twin(root, tmp_path / "serial")
    sh("dvc", "repro", cwd=serial)
    driver = start(root, "--workers", "1")
    until(lambda: lines(root / "count.txt") >= 2, "the stage to be midway")
    os.killpg(driver.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130 and "interrupted: no partial output was kept" in err, err[-3000:]
    none_left(root, within=1)  # nothing writes count.txt any more
    ends_as_serial(root, serial)


def test_a_driver_gone_from_an_external_scheduler_ends_its_stages(tmp_path):
    """Two stages on two workers: a shell command (run under the guard) and a stage module the worker runs
    itself; the driver SIGKILLed mid-stage, the scheduler cancels both."""
    files = {"stages/tick.py": "import time\nfrom pathlib import Path\n\nfor i in range(1, 41):\n"
                               "    with open('tick.txt', 'a') as f:\n        print(i, file=f)\n    time.sleep(0.25)\n"}
    stages = {"count": {"cmd": COUNT.replace(f"seq {N}", "seq 40"), "outs": ["count.txt"]},  # 10 s each
              "tick": {"cmd": "python -m stages.tick", "deps": ["stages/tick.py"], "outs": ["tick.txt"]}}
    root = toy(tmp_path / "toy", stages, files)
    for d in ("pipeline", "stages"):  # the worker runs this checkout's stage modules itself
        for f in (REPO / d).rglob("*.py"):
            if not (root / f.relative_to(REPO)).exists():
                (root / f.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, root / f.relative_to(REPO))
    serial = twin(root, tmp_path / "serial")
    sh("dvc", "repro", cwd=serial)
    workers = [{"name": n, "cwd": str(root), "env": {"PYTHONPATH": str(root)}} for n in ("0", "1")]
    with scheduler(tmp_path, *workers) as address:
        driver = start(root, "--scheduler", address)
        until(lambda: lines(root / "count.txt") >= 2 and lines(root / "tick.txt") >= 2, "both stages midway")
        driver.kill()
        driver.communicate(timeout=60)

        def ended(stage: str) -> bool:  # the scheduler saw the client go and cancelled; the worker ended it
            fd = os.open(stagelock.path(root, stage), os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            finally:
                os.close(fd)

        until(lambda: ended("count") and ended("tick"), "both stages to end", within=30)
        ticks, counts = lines(root / "tick.txt"), lines(root / "count.txt")
        time.sleep(1.0)  # four appends' time
        assert (lines(root / "tick.txt"), lines(root / "count.txt")) == (ticks, counts)
        assert ticks < 40 and counts < 40 and not stage_processes(root)
        rerun = subprocess.run([BOULDERSEG, "repro", "--scheduler", address], cwd=root, env=ENV,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert {"done: tick", "done: count"} <= set(rerun.stdout.splitlines())
    for name in ("count.txt", "tick.txt"):
        assert (root / name).read_text() == "".join(f"{i}\n" for i in range(1, 41)) == (serial / name).read_text()
    assert lock(root) == lock(serial) and status_is_clean(root)


def test_a_fresh_process_stage_runs_in_that_process_not_in_a_shared_warm_server(tmp_path):
    """`python3 -m` is not the `python -m` of boulderseg's stages: it runs in a fresh process, whose stage would
    otherwise hand itself over to the one warm server every CPU worker shares."""
    who = ("import os\nimport sys\nfrom pathlib import Path\n\nfrom pipeline.warm.client import handoff\n\n"
           "handoff(60)\nPath(f'who-{sys.argv[1]}.txt').write_text(f'{os.getpid()} {os.getppid()}')\n")
    files = {"stages/who.py": who}
    stages = {"who": {"foreach": ["a", "b"], "do": {"cmd": "python3 -m stages.who ${item}",
                                                     "outs": ["who-${item}.txt"]}}}
    root = toy(tmp_path / "toy", stages, files)
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "stages/__init__.py").write_text("")
    r = subprocess.run([BOULDERSEG, "repro", "--workers", "2"], cwd=root, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (pid_a, parent_a), (pid_b, parent_b) = ((root / f"who-{i}.txt").read_text().split() for i in "ab")
    assert pid_a != pid_b and parent_a != parent_b  # each in its own process, each under its own guard
    assert "warm process" not in r.stdout + r.stderr


def test_a_second_repro_at_once_gets_one_line(tmp_path):
    root = toy(tmp_path / "toy", {"wait": {"cmd": "echo 1 > wait.txt && sleep 60", "outs": ["wait.txt"]}})
    first = start(root, "--workers", "1")
    until(lambda: (root / "wait.txt").exists(), "the first run's stage")
    second = subprocess.run([BOULDERSEG, "repro", "--workers", "1"], cwd=root, env=ENV, capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 1 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert second.stderr.startswith("error: another DVC command is running in this project")
    os.killpg(first.pid, signal.SIGINT)
    assert first.wait(timeout=120) == 130
    none_left(root)


def test_dvcs_refusals_are_one_line_each(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    broken = toy(tmp_path / "broken", STAGES)
    (broken / "dvc.yaml").write_text("stages:\n  count:\n    cmd: [unclosed\n")
    for where, says in ((outside, "is not in a DVC project"), (broken, "dvc.yaml")):
        r = subprocess.run([BOULDERSEG, "repro", "--workers", "1"], cwd=where, env=ENV, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_an_input_edited_while_its_stage_runs_is_not_recorded_as_current(tmp_path):
    stages = {"copy": {"cmd": "cp in.txt copy.txt && sleep 2", "deps": ["in.txt"], "outs": ["copy.txt"]}}
    root = toy(tmp_path / "toy", stages, {"in.txt": "old\n"})
    driver = start(root, "--workers", "1")
    until(lambda: (root / "copy.txt").exists(), "the stage to have read its input")
    (root / "in.txt").write_text("new\n")
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 1 and "in.txt changed while it ran" in err and "Traceback" not in err, err
    assert "copy" not in lock(root).get("stages", {}) and not status_is_clean(root)
    rerun = subprocess.run([BOULDERSEG, "repro", "--workers", "1"], cwd=root, env=ENV, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0 and (root / "copy.txt").read_text() == "new\n" and status_is_clean(root)


@pytest.mark.parametrize(("visible", "count", "devices"), [
    (None, 2, ["0", "1"]), ("", 2, []), ("0, 1", 4, ["0", "1"]), ("3,", 4, ["3"]), ("-1", 2, []), ("2,-1,3", 4, ["2"]),
    ("GPU-5b1c,GPU-77aa", 0, ["GPU-5b1c", "GPU-77aa"]), (None, 0, [])])
def test_cuda_visible_devices(visible, count, devices):
    from pipeline.cluster.worker import visible_devices

    assert visible_devices(visible, count) == devices


def test_workers_that_join_later_take_a_free_gpu(tmp_path):
    """Each process claims the first GPU no other process holds, for its life; a third of two GPUs shares one."""
    code = ("import sys, time\nfrom pipeline.cluster.worker import claimed_device\n"
            "print(claimed_device(), flush=True)\ntime.sleep(30)\n")
    env = ENV | {"CUDA_VISIBLE_DEVICES": "4,6", "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}  # locks of its own
    procs, seen = [], []
    try:
        for _ in range(3):  # one after another: each joins while the earlier ones hold theirs
            procs.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True))
            assert select.select([procs[-1].stdout], [], [], 60)[0], "no device claimed within 60 s"
            seen.append(procs[-1].stdout.readline().strip())
        assert seen[:2] == ["4", "6"] and seen[2] in {"4", "6"}
        procs[0].kill()
        procs[0].wait()
        late = subprocess.run([sys.executable, "-c", code.replace("time.sleep(30)", "")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert late.stdout.strip() == "4"  # the one its killed holder let go
    finally:
        for p in procs:
            p.kill()
            p.wait()
