"""One lock per stage of a project (a flock on `.dvc/tmp/boulderseg-stages/<stage>.lock`), taken by the worker
that runs the stage and held by every process that shares its open file: the guard, the stage's shell and what
the shell forks. A stage is started again, or an interrupted run ends, only once no process of an earlier attempt
holds it. Processes still holding it after `grace` seconds are leftovers of an attempt that is over (their
worker, driver or guard died by SIGKILL) and are killed, except the Dask worker that took the lock: a stage it
runs in-process ends at its next Python instruction once cancelled, and a worker is never killed for it."""
from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from pipeline.core.errors import BouldersegError

GRACE = 5.0  # seconds a leftover gets to end on its own (a guard ends its stage within milliseconds)
ELSEWHERE = 120.0  # seconds past `grace` to wait for holders that are not killed (a worker; another machine)


def path(root: str | Path, stage: str) -> Path:
    """The lock file of `stage` (a DVC address such as `features@a-x3d_xs`) in the project at `root`."""
    folder = Path(root) / ".dvc" / "tmp" / "boulderseg-stages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{quote(stage, safe='@-_.')}.lock"


def holders(lock: Path) -> list[int]:
    """The processes of this machine other than this one that hold `lock` (an open file of it with the flock
    on it, as /proc/PID/fdinfo shows; one that only waits for it has none)."""
    try:
        st = lock.stat()
    except FileNotFoundError:
        return []
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) != os.getpid() and _holds(pid, (st.st_dev, st.st_ino)):
            found.append(int(pid))
    return found


def _holds(pid: str, file: tuple[int, int]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or another user's
        return False
    for fd in fds:
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            if (st.st_dev, st.st_ino) == file and "\nlock:" in Path(f"/proc/{pid}/fdinfo/{fd}").read_text():
                return True
        except OSError:
            continue
    return False


def hold(root: str | Path, stage: str, *, grace: float = GRACE, worker: bool = False,
         say: Callable[[str], None] | None = None) -> int:
    """An open file descriptor holding `stage`'s lock (inheritable: pass it on to the stage), once every process
    of an earlier attempt has ended: those still holding it after `grace` seconds are killed, but not the worker
    that took it, which is waited for `ELSEWHERE` more seconds. `worker`: this process is that worker. Close
    the descriptor to let go."""
    lock = path(root, stage)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        start, told, seen = time.monotonic(), False, set()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            left = holders(lock)
            spared = _worker_of(lock)  # read after the scan: a worker that just took the lock has written it
            if not told and say is not None:
                say(f"{stage}: waiting for the processes of an earlier run to end ({_named(left)})")
                told = True
            if time.monotonic() - start > grace:
                for pid in seen.intersection(left):  # held it at two polls: not one taking it for an instant
                    if pid != spared:
                        _kill(pid)
                if time.monotonic() - start > grace + ELSEWHERE:
                    where = f"Dask worker {spared}" if spared in left else "a process on another machine"
                    raise BouldersegError(
                        f"{stage}: {where} still holds {lock}, so an earlier run of this stage may still be "
                        "writing its outputs. Let it end (or restart that worker), then run again.")
            seen = set(left)
            time.sleep(0.05)
        if worker:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


def wait_ended(root: str | Path, stage: str, *, grace: float = GRACE,
               say: Callable[[str], None] | None = None) -> None:
    """Return once no process runs `stage` any longer (killing those that go on past `grace` seconds)."""
    os.close(hold(root, stage, grace=grace, say=say))


def _worker_of(lock: Path) -> int | None:
    """The Dask worker that took `lock` last."""
    try:
        return int(lock.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


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
