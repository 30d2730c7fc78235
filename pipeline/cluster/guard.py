"""The process between a worker and a stage it runs in a fresh process: it ends every process the stage started
when the stage ends, and all of them at once when its worker dies (even by SIGKILL) or it is sent SIGTERM/SIGHUP.

`python -I -S guard.py PARENT_PID COMMAND`: runs COMMAND in a shell and exits with its code (128+N for a signal N).
It is a child subreaper (a process the stage starts and leaves behind, even in a session of its own, becomes its
child rather than init's) and asks the kernel for SIGTERM when its parent dies. Were the guard itself SIGKILLed,
the stage's shell gets SIGKILL; what the shell started lives on, and those that share its open files (a shell's
children do) still hold the stage's lock (see `stagelock`), so the next attempt waits for them and kills them.
Standard library only: it starts in milliseconds.
"""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


class Stop(Exception):
    """SIGTERM or SIGHUP: its number."""


def _prctl(option: int, value: int) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _stop(signum: int, _frame: object) -> None:
    for s in (signal.SIGTERM, signal.SIGHUP):  # one is enough
        signal.signal(s, signal.SIG_IGN)
    raise Stop(signum)


def _child(guard: int) -> None:
    """In the stage's shell: a terminal's Ctrl-C stops it, as under `dvc repro`; it dies with the guard."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != guard:  # the guard died before the line above
        os._exit(128 + signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, from /proc (parents before their children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(b")") + 2:].split()  # the name may hold spaces and parentheses
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def end_all() -> None:
    """SIGKILL every process below this one until none is left, reaping them (a subreaper's orphans are its own)."""
    while True:
        alive = descendants(os.getpid())
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            if not alive:
                return
        if alive:
            time.sleep(0.01)


def _run(parent: int, command: str) -> int:
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the worker died before the line above
        return 128 + signal.SIGTERM
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    child = functools.partial(_child, os.getpid())
    rc = subprocess.Popen(command, shell=True, close_fds=False, preexec_fn=child).wait()
    return rc if rc >= 0 else 128 - rc


def main(parent: int, command: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the stage's and the driver's
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _stop)
    try:
        rc = _run(parent, command)
    except Stop as e:
        rc = 128 + e.args[0]
    try:
        end_all()
    except Stop as e:  # it came as the stage ended: the handler is gone now
        rc = 128 + e.args[0]
        end_all()
    return rc


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2]))
