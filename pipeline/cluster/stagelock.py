"""One lock per stage of a project, held by every process that runs it (the worker, the guard, the stage and all
they fork inherit it): a stage is started again, or a run ends, only once no process of an earlier attempt can
still touch its outputs. Processes that hold it past `grace` seconds are leftovers of an attempt that is over
(their worker, driver or guard died by SIGKILL): they are killed."""
from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from pipeline.core.errors import BouldersegError

GRACE = 5.0  # seconds a leftover gets to end on its own (a guard ending its stage takes milliseconds)
ELSEWHERE = 120.0  # seconds past `grace` to wait for holders this machine cannot see (a shared file system)


def path(root: str | Path, stage: str) -> Path:
    """The lock file of `stage` (a DVC address such as `features@a-x3d_xs`) in the project at `root`."""
    folder = Path(root) / ".dvc" / "tmp" / "boulderseg-stages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{quote(stage, safe='@-_.')}.lock"


def holders(lock: Path) -> list[int]:
    """The processes other than this one with `lock` open (from /proc: this machine's)."""
    try:
        st = lock.stat()
    except FileNotFoundError:
        return []
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                fst = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (fst.st_ino, fst.st_dev) == (st.st_ino, st.st_dev):
                found.append(int(pid))
                break
    return found


def hold(root: str | Path, stage: str, *, grace: float = GRACE, say: Callable[[str], None] | None = None) -> int:
    """An open file descriptor holding `stage`'s lock (inheritable: pass it on to the stage), once every process
    of an earlier attempt has ended; those still holding it after `grace` seconds are killed. Close it to let go."""
    lock = path(root, stage)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline, told = time.monotonic() + grace, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                pass
            if not told and say is not None:
                say(f"{stage}: waiting for the processes of an earlier run to end ({_named(holders(lock))})")
                told = True
            if time.monotonic() > deadline:
                left = holders(lock)
                for pid in left:
                    _kill(pid)
                if not left and time.monotonic() > deadline + ELSEWHERE:
                    raise BouldersegError(
                        f"{stage}: a process on another machine still holds {lock}, so an earlier run of this "
                        "stage may still be writing its outputs. End it (or its worker), then run again.")
            time.sleep(0.05)
    except BaseException:
        os.close(fd)
        raise


def wait_ended(root: str | Path, stage: str, *, grace: float = GRACE) -> None:
    """Return once no process runs `stage` any longer (killing those that go on past `grace` seconds)."""
    os.close(hold(root, stage, grace=grace))


def _named(pids: list[int]) -> str:
    names = []
    for pid in pids:
        try:
            names.append(f"{pid} {Path(f'/proc/{pid}/comm').read_text().strip()}")
        except OSError:
            continue
    return ", ".join(names) or "elsewhere"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
