"""One stage on a Dask worker: in the worker itself where that is safe (imports and built models then pay once per
worker), in a fresh process otherwise. Nothing here imports DVC."""
from __future__ import annotations

import ctypes
import fcntl
import functools
import multiprocessing
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.cluster import guard, stagelock
from pipeline.warm import runner
from pipeline.warm.client import socket_dir


def driver_settings() -> dict[str, str | None]:
    """The driver's values of what Dask's nanny sets in every worker (OMP_NUM_THREADS=1 and the like): the
    stage gets them back, so it computes exactly what `dvc repro` computes (torch's CPU kernels give other
    float results at other thread counts, and dvc.lock must not change)."""
    import dask.config
    import distributed  # noqa: F401 - registers its config, which names those settings

    return {k: os.environ.get(k) for k in dask.config.get("distributed.nanny.pre-spawn-environ")}


class IgnoreInterrupt(WorkerPlugin):
    """Every worker of a local cluster, the nanny's restarts included, ignores the terminal's Ctrl-C: it is the
    driver's, which cancels the run and records what finished."""

    name = "boulderseg-ignore-interrupt"

    def setup(self, worker) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker's event loop runs in its main thread


def visible_devices(visible: str | None, count: int) -> list[str]:
    """The GPUs a process may use: those CUDA_VISIBLE_DEVICES names, as SLURM sets it (set but empty: none; as
    CUDA reads it, none from an invalid index such as -1 on), or else the `count` GPUs of its host."""
    if visible is None:
        return [str(i) for i in range(count)]
    devices = [d.strip() for d in visible.split(",") if d.strip()]
    return devices[:next((i for i, d in enumerate(devices) if d.startswith("-")), len(devices))]


def usable_gpus() -> int:
    """How many GPUs this process may use."""
    return len(visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"), gpu_count()))


@functools.cache  # once per worker process, held for its life: a worker is one GPU's
def claimed_device() -> str | None:
    """The GPU this worker process takes (one with the Dask resource `GPU`): the first of those it may use that
    no other worker of this user on this host holds (a lock in this user's private folder, let go when the
    process ends, so a worker that joins later or is restarted takes a free one); with more workers than GPUs,
    one by process id. None: no GPU."""
    devices = visible_devices(_started_with("CUDA_VISIBLE_DEVICES"), gpu_count())
    for device in devices:
        fd = os.open(socket_dir() / f"gpu-{device}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _CLAIMS.append(fd)
        return device
    return devices[os.getpid() % len(devices)] if devices else None


_CLAIMS: list[int] = []  # this process's GPU locks, open for its life


class Cancelled(KeyboardInterrupt):
    """Raised in a stage run in the worker whose task was cancelled: the stage ends as after a Ctrl-C."""


def run_on_worker(stage: str, cmd: str, outs: list[str], cwd: str, env: dict[str, str], *,
                  settings: dict[str, str | None]) -> dict:
    """One stage on this worker, once no process of an earlier attempt at it is left (`stagelock`): its outputs
    removed (a stage rerun after its worker died starts clean), then its command in `cwd`, with `env` (DVC's
    DVC_ROOT and DVC_STAGE) added to the worker's environment. {"tail": the end of its output, "fresh": why it
    ran in a fresh process, or ""}. A cancelled task ends its stage and every process the stage started.

    boulderseg's own stages (`python -m stages.NAME ...`) run in the worker itself when it loaded exactly the
    checkout's code, runs one thread and may start processes; otherwise (and for any other command) in a fresh
    process under `guard`, which never hands the stage to a shared warm server. `settings`: see `driver_settings`."""
    from distributed import get_worker
    from distributed.worker import thread_state

    worker, key = get_worker(), thread_state.key

    def cancelled() -> bool:
        ts = worker.state.tasks.get(key)
        return ts is None or ts.state == "cancelled"

    argv = shlex.split(cmd)
    fresh = _why_fresh(argv, cwd, worker.state.nthreads)
    held = stagelock.hold(env["DVC_ROOT"], stage, worker=True)
    try:
        if cancelled():  # while it waited for an earlier attempt to end
            raise RuntimeError("cancelled")
        for out in map(Path, outs):
            if out.is_dir() and not out.is_symlink():
                shutil.rmtree(out)
            elif out.exists() or out.is_symlink():
                out.unlink()
        env = ({k: v for k, v in os.environ.items() if k not in settings} | {k: v for k, v in settings.items() if v}
               | env)
        device = claimed_device() if worker.state.total_resources.get("GPU") else None
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        if fresh is None:
            rc, output = _in_worker(stage, argv[2], argv[3:], cwd, env, cancelled)
        else:
            rc, output = _in_guard(cmd, cwd, env | {runner.IN_SERVER: "1"}, held, cancelled)
    except KeyboardInterrupt:  # never out of a task: Dask would shut the worker down
        raise RuntimeError("cancelled") from None
    finally:
        os.close(held)
    if rc:
        raise RuntimeError(f"exit {rc}: {output.strip()[-1500:]}")
    return {"tail": output.strip()[-500:], "fresh": fresh or ""}


def _in_guard(cmd: str, cwd: str, env: dict[str, str], held: int, cancelled: Callable[[], bool]) -> tuple[int, str]:
    """`cmd` run by `guard` in a fresh process that holds the stage's lock `held`: its exit code and output."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-I", "-S", guard.__file__, str(os.getpid()), cmd], cwd=cwd,
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=(held,))
        stopping = False
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if not stopping and cancelled():
                    proc.terminate()  # the guard ends the stage and all it started
                    stopping = True
        log.seek(0)
        return rc, log.read().decode(errors="replace")


def _why_fresh(argv: list[str], cwd: str, nthreads: int) -> str | None:
    """Why this command must run in a fresh process ("" for any command but boulderseg's stages); None where
    this worker may run it itself."""
    if not (len(argv) > 2 and argv[:2] == ["python", "-m"] and runner.is_stage_module(argv[2], Path(cwd))):
        return ""
    if multiprocessing.current_process().daemon:
        return "a daemonic worker may not start the processes a stage starts"
    if nthreads != 1:
        return f"the worker runs {nthreads} threads"
    if not runner.code_key(Path(cwd)) == runner.code_key(runner.ROOT) == runner.LOADED:  # edited since loaded
        return "the worker's loaded code differs from the checkout's"
    return None


def _in_worker(stage: str, module: str, argv: list[str], cwd: str, env: dict[str, str],
               cancelled: Callable[[], bool]) -> tuple[int, str]:
    """`python -m MODULE ARGV` run in this worker as the warm server runs it: its exit code and output. The log
    is named after the stage and removed at once, so /proc/PID/fd/1 shows what a worker is running and a
    killed worker leaves nothing behind. Once `cancelled()`, `Cancelled` is raised in the stage's thread."""
    fd, name = tempfile.mkstemp(prefix=f"boulderseg-stage-{stage}-")
    os.unlink(name)
    thread, lock = threading.get_ident(), threading.Lock()
    live = threading.Event()  # set while the stage's own code runs: the one span `Cancelled` may land in

    def watch() -> None:
        while not done.wait(0.2):
            if cancelled():
                with lock:
                    if live.is_set():
                        _raise_in(thread, Cancelled)
                        return

    def exposed(request: dict) -> int:
        """The stage, with `Cancelled` allowed in; once it returns, none is pending. Raised at most once, it
        lands here or, at the latest, in `run_in_process`'s try, which turns it into 130 before it restores
        this worker's environment, directory and fds."""
        try:
            with lock:
                live.set()
            return runner.run_module(request)
        finally:
            with lock:
                live.clear()
                _raise_in(thread, None)

    done = threading.Event()
    threading.Thread(target=watch, daemon=True).start()
    with os.fdopen(fd, "w+b") as log:
        try:
            rc = runner.run_in_process({"module": module, "argv": argv, "cwd": cwd, "env": env}, fd, fd,
                                       _defaults(), run=exposed)
        finally:
            done.set()
        log.seek(0)
        return rc, log.read().decode(errors="replace")


def _raise_in(thread: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in `thread` at its next Python instruction (None: forget one not raised yet)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None)


@functools.cache  # once per worker process: its state before its first stage
def _defaults():
    return runner.process_defaults()


@functools.cache  # once per worker process: what it was started with, before any stage changed os.environ
def _started_with(name: str) -> str | None:
    return os.environ.get(name)


@functools.cache  # once per worker process
def gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))
