"""One stage on a Dask worker: in the worker itself where that is safe (imports and built models then pay once per
worker), in a fresh process otherwise. Nothing here imports DVC."""
from __future__ import annotations

import functools
import multiprocessing
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.warm import runner


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


def gpu_slots(workers: dict[str, dict]) -> dict[str, int]:
    """Each worker's slot among the workers of its host (by name), from `Client.scheduler_info()["workers"]`:
    the index of the GPU it takes, whatever its name looks like."""
    hosts: dict[str, list[str]] = {}
    for w in workers.values():
        hosts.setdefault(w.get("host", ""), []).append(str(w["name"]))
    return {name: i for names in hosts.values() for i, name in enumerate(sorted(names, key=_natural))}


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def cuda_devices(slot: int, visible: str | None, count: int) -> str | None:
    """The CUDA_VISIBLE_DEVICES of the worker in `slot`: one of the devices it was started with (`visible`, as
    SLURM sets it), or of the `count` GPUs of its host; None where it has none to choose from."""
    devices = [d for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(count)]
    return devices[slot % len(devices)] if devices else None


def run_on_worker(stage: str, cmd: str, outs: list[str], cwd: str, env: dict[str, str], *,
                  settings: dict[str, str | None], slots: dict[str, int]) -> dict:
    """One stage on this worker: its outputs removed (again: a stage rerun after its worker died starts clean), then
    its command in `cwd`, with `env` (DVC's DVC_ROOT and DVC_STAGE) added to the worker's environment.
    {"tail": the end of its output, "fresh": why it ran in a fresh process, or ""}.

    boulderseg's own stages (`python -m stages.NAME ...`) run in the worker itself when it loaded exactly the
    checkout's code, runs one thread and may start processes; otherwise (and for any other command) in a fresh
    process. `settings`: see `driver_settings`; `slots`: see `gpu_slots`."""
    from distributed import get_worker

    for out in map(Path, outs):
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists() or out.is_symlink():
            out.unlink()
    worker = get_worker()
    env = ({k: v for k, v in os.environ.items() if k not in settings} | {k: v for k, v in settings.items() if v}
           | env)
    device = cuda_devices(slots.get(str(worker.name), 0), _started_with("CUDA_VISIBLE_DEVICES"), gpu_count())
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    argv = shlex.split(cmd)
    fresh = _why_fresh(argv, cwd, worker.state.nthreads)
    if fresh is None:
        rc, output = _in_worker(stage, argv[2], argv[3:], cwd, env)
    else:
        r = subprocess.run(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, preexec_fn=_interruptible)
        rc, output = r.returncode, r.stdout
    if rc:
        raise RuntimeError(f"exit {rc}: {output.strip()[-1500:]}")
    return {"tail": output.strip()[-500:], "fresh": fresh or ""}


def _interruptible() -> None:
    """In a stage's own process: a terminal's Ctrl-C stops it, as under `dvc repro` (its worker ignores it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def _in_worker(stage: str, module: str, argv: list[str], cwd: str, env: dict[str, str]) -> tuple[int, str]:
    """`python -m MODULE ARGV` run in this worker as the warm server runs it: its exit code and output. The log
    is named after the stage and removed at once, so /proc/PID/fd/1 shows what a worker is running and a
    killed worker leaves nothing behind."""
    fd, name = tempfile.mkstemp(prefix=f"boulderseg-stage-{stage}-")
    os.unlink(name)
    with os.fdopen(fd, "w+b") as log:
        rc = runner.run_in_process({"module": module, "argv": argv, "cwd": cwd, "env": env}, fd, fd, _defaults())
        log.seek(0)
        return rc, log.read().decode(errors="replace")


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
