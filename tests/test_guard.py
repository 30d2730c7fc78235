"""The guard a worker runs a fresh-process stage under, and the per-stage lock: real processes, signals, flocks."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.cluster import guard, stagelock
from pipeline.core.errors import BouldersegError


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def until(ready, what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def guarded(command: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-I", "-S", guard.__file__, str(os.getpid()), command], **kwargs)


def test_what_a_stage_leaves_behind_ends_with_it_even_in_a_session_of_its_own(tmp_path):
    pids = tmp_path / "pids"
    r = guarded(f"sleep 60 & echo $! >> {pids}; setsid sh -c 'echo $$ >> {pids}; sleep 60' & "
                f"while [ $(wc -l < {pids}) -lt 2 ]; do sleep 0.02; done; exit 3")
    assert r.wait(timeout=30) == 3
    left = [int(p) for p in pids.read_text().split()]
    assert len(left) == 2 and not any(alive(p) for p in left)


def test_a_guard_sent_sigterm_ends_a_stage_that_ignores_it(tmp_path):
    pids = tmp_path / "pids"
    g = guarded(f"trap '' INT TERM HUP; sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait")
    until(lambda: pids.exists() and len(pids.read_text().split()) == 2, "the stage to start")
    g.send_signal(signal.SIGTERM)
    assert g.wait(timeout=30) == 128 + signal.SIGTERM
    assert not any(alive(int(p)) for p in pids.read_text().split())


def test_a_guard_whose_worker_dies_ends_its_stage(tmp_path):
    """The worker here is a shell that starts the guard, then is SIGKILLed: the kernel tells the guard."""
    pids = tmp_path / "pids"
    worker = subprocess.Popen(["sh", "-c", f'{sys.executable} -I -S {guard.__file__} $$ '
                               f'"sleep 60 & echo \\$! >> {pids}; wait"; sleep 60'])
    until(lambda: pids.exists() and pids.read_text().strip(), "the stage to start")
    worker.kill()
    worker.wait()
    sleeper = int(pids.read_text())
    until(lambda: not alive(sleeper), "the stage to end with its worker")


def test_a_leftover_holding_a_stages_lock_is_killed_after_the_grace_and_a_waiter_is_not(tmp_path):
    """A guard SIGKILLed: its shell dies with it, the shell's child lives on holding the lock; the next attempt
    kills it after the grace, and leaves alone a process that only has the file open."""
    lock = stagelock.path(tmp_path, "count@a")
    fd = stagelock.hold(tmp_path, "count@a")
    g = subprocess.Popen([sys.executable, "-I", "-S", guard.__file__, str(os.getpid()),
                          f"sleep 60 & echo $! > {tmp_path / 'pid'}; wait"], pass_fds=(fd,))
    os.close(fd)
    until(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip(), "the stage to start")
    shell = psutil.Process(g.pid).children()[0].pid
    sleeper = int((tmp_path / "pid").read_text())
    waiter = subprocess.Popen([sys.executable, "-c", f"import time; f = open({str(lock)!r}); time.sleep(60)"])
    try:
        g.kill()
        g.wait()
        until(lambda: not alive(shell), "the shell to die with its guard")
        assert alive(sleeper) and stagelock.holders(lock) == [sleeper]  # the waiter holds no lock
        start = time.monotonic()
        os.close(stagelock.hold(tmp_path, "count@a", grace=0.5))
        assert time.monotonic() - start >= 0.5 and alive(waiter.pid)
        until(lambda: not alive(sleeper), "the leftover to be gone")  # its flock goes just before it is reaped
    finally:
        waiter.kill()
        waiter.wait()


def test_the_worker_that_took_a_lock_is_never_killed_for_it(tmp_path, monkeypatch):
    """A stage a worker runs in-process ends at its next Python instruction once cancelled: however long that
    takes, the worker is waited for, then named; never killed."""
    lock = stagelock.path(tmp_path, "tick")
    code = ("import sys, time\nfrom pipeline.cluster import stagelock\n"
            f"stagelock.hold({str(tmp_path)!r}, 'tick', worker=True)\nprint('held', flush=True)\ntime.sleep(60)\n")
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"PYTHONPATH": str(Path(stagelock.__file__).parents[2])})
    try:
        assert worker.stdout.readline() == "held\n" and lock.read_text() == f"{worker.pid}\n"
        monkeypatch.setattr(stagelock, "ELSEWHERE", 0.5)
        with pytest.raises(BouldersegError, match=f"tick: Dask worker {worker.pid} still holds"):
            stagelock.hold(tmp_path, "tick", grace=0.2)
        assert alive(worker.pid)
        fd = os.open(lock, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # it still holds it
        os.close(fd)
    finally:
        worker.kill()
        worker.wait()
