"""`boulderseg repro --workers N | --scheduler ADDRESS`: DVC's stale stages run on a Dask cluster, DVC still the record.

DVC has no parallel stage execution. Here the driver asks DVC which stages are stale (`Repo.status`, plus
everything downstream of one in `repo.index.graph`, since a stale upstream stage makes its successors stale
only once it reruns), submits each as one Dask task whose inputs are exactly its stale upstream tasks, and
records the finished stages in dvc.lock with the calls DVC's own `Repo.commit(stage, force=True)` makes,
batched, in this process. boulderseg's own stages run inside the long-lived workers.
"""
from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import BouldersegError
from pipeline.warm import runner


@dataclass(frozen=True)
class Plan:
    order: list[str]  # stale stages, upstream first
    cmd: dict[str, str]
    outs: dict[str, list[str]]
    upstream: dict[str, list[str]]  # each stage's stale direct dependencies
    stages: dict = field(repr=False)  # name -> DVC's Stage, recorded by `record`


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> the tail of its error
    skipped: list[str] = field(default_factory=list)  # downstream of a failure
    recording_s: float = 0.0  # the driver's time in DVC's commit


def plan(repo, targets: Sequence[str] = ()) -> Plan:
    """The stale stages of `repo` (restricted to `targets` and what they need: a stage name, or a stage group
    such as `frames` or `features-pytorchvideo`), in an order where each comes after its dependencies.
    Call it, and `execute` its plan, under one `dvc.repo.lock_repo(repo)`: the plan's stages are recorded."""
    import networkx as nx

    graph = repo.index.graph  # edges point from a stage to the stages it depends on
    by_name = {s.addressing: s for s in graph.nodes}
    stale = set()
    for name in repo.status():
        if name in by_name:
            stale |= {by_name[name], *nx.ancestors(graph, by_name[name])}
    if targets:
        wanted = {s for s in graph.nodes if any(s.addressing == t or s.addressing.startswith(f"{t}@") for t in targets)}
        if not wanted:
            raise BouldersegError(f"no stage named {', '.join(targets)} in dvc.yaml; `dvc stage list` lists them.")
        stale &= wanted | {d for s in wanted for d in nx.descendants(graph, s)}
    order = [s for s in reversed(list(nx.topological_sort(graph))) if s in stale]
    return Plan(order=[s.addressing for s in order], cmd={s.addressing: s.cmd for s in order},
                outs={s.addressing: [o.fs_path for o in s.outs] for s in order},
                upstream={s.addressing: [d.addressing for d in graph.successors(s) if d in stale] for s in order},
                stages={s.addressing: s for s in order})


def driver_settings() -> dict[str, str | None]:
    """The driver's values of what Dask's nanny sets in every worker (OMP_NUM_THREADS=1 and the like): the
    stage gets them back, so it computes exactly what `dvc repro` computes (torch's CPU kernels give other
    float results at other thread counts, and dvc.lock must not change)."""
    import dask.config
    import distributed  # noqa: F401 - registers its config, which names those settings

    return {k: os.environ.get(k) for k in dask.config.get("distributed.nanny.pre-spawn-environ")}


def run_stage(cmd: str, outs: list[str], cwd: str, settings: dict[str, str | None], *upstream: str) -> str:
    """One stage on a worker: its outputs removed (as `dvc repro` does), then its command; its output's tail.

    boulderseg's own stages (`python -m stages.NAME ...`) run in the worker itself, so what they import and
    build (torch, a model) is paid once per worker; any other command, or any command on a daemonic worker
    (one that may not start processes, as the frames stage does), runs as a subprocess. A worker with a
    GPU sees only its own (CUDA_VISIBLE_DEVICES); `settings`: see `driver_settings`."""
    from distributed import get_worker

    for out in map(Path, outs):
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists() or out.is_symlink():
            out.unlink()
    env = {k: v for k, v in os.environ.items() if k not in settings} | {k: v for k, v in settings.items() if v}
    worker = get_worker()
    gpus, index = _gpu_count(), int(worker.name) if str(worker.name).isdigit() else 0
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
    argv = shlex.split(cmd)
    ours = len(argv) > 2 and argv[:2] == ["python", "-m"] and argv[2].startswith("stages.")
    if ours and not multiprocessing.current_process().daemon:
        rc, output = _in_worker(argv[2], argv[3:], cwd, env)
    else:
        r = subprocess.run(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        rc, output = r.returncode, r.stdout
    if rc:
        raise RuntimeError(f"exit {rc}: {output.strip()[-1500:]}")
    return output.strip()[-500:]


def _in_worker(module: str, argv: list[str], cwd: str, env: dict[str, str]) -> tuple[int, str]:
    """`python -m MODULE ARGV` run in this worker as the warm server runs it: its exit code and output."""
    with tempfile.TemporaryFile() as log:
        rc = runner.run_in_process({"module": module, "argv": argv, "cwd": cwd, "env": env}, log.fileno(),
                                   log.fileno(), _defaults())
        log.seek(0)
        return rc, log.read().decode(errors="replace")


@functools.cache  # once per worker process: its state before its first stage
def _defaults():
    return runner.process_defaults()


@functools.cache  # once per worker process
def _gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def execute(repo, p: Plan, client, settings: dict[str, str | None], *, say=print) -> Outcome:
    """Submit `p` to `client` and record the stages as they finish; a failure stops only its descendants.
    `settings`: `driver_settings()`, taken before the cluster started (starting one sets them here too).

    Stages that finish while the driver records others are recorded together, in one write of dvc.lock."""
    from distributed import as_completed

    gpu = any(w.get("resources", {}).get("GPU") for w in client.scheduler_info()["workers"].values())
    futures = {}
    for name in p.order:
        futures[name] = client.submit(run_stage, p.cmd[name], p.outs[name], str(Path(repo.root_dir)), settings,
                                      *[futures[u] for u in p.upstream[name]], key=f"stage-{name}", pure=False,
                                      resources={"GPU": 1} if gpu and uses_gpu(name) else None)
    names = {f.key: n for n, f in futures.items()}
    outcome = Outcome()
    logging.getLogger("dvc").setLevel(logging.ERROR)  # its per-commit chatter ("Updating lock file") is ours to say
    try:
        for batch in as_completed(futures.values()).batches():
            finished = []
            for future in batch:
                name = names[future.key]
                if future.status == "finished":
                    finished.append(name)
                elif any(futures[u].status == "error" for u in _all_upstream(p, name)):  # Dask passed its error down
                    outcome.skipped.append(name)
                else:
                    outcome.failed[name] = str(future.exception())
                    say(f"failed: {name}")
            if finished:
                t = time.perf_counter()
                record([p.stages[n] for n in finished])
                outcome.recording_s += time.perf_counter() - t
                outcome.done += finished
                for name in finished:
                    say(f"done: {name}")
    except KeyboardInterrupt:
        client.cancel(list(futures.values()))
        raise
    return outcome


def uses_gpu(stage: str) -> bool:
    """Whether a stage is one of the kinds that want a GPU (persons, features); frames and the rest are CPU work."""
    kind = stage.split("@")[0]
    return kind.startswith(("persons", "features-"))


def record(stages: list) -> None:
    """DVC's own commit of finished stages, as `Repo.commit(name, force=True)` does it for one: each stage's deps
    and outs hashed and its outs cached (`Stage.save`, `Stage.commit`), then one write of dvc.lock for them all.
    A Ctrl-C waits until dvc.lock is written."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for stage in stages:
            stage.save()
            stage.commit(relink=True)
        for path in dict.fromkeys(s.dvcfile.path for s in stages):
            mine = [s for s in stages if s.dvcfile.path == path]
            mine[0].dvcfile.dump_stages(mine, update_pipeline=False)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _all_upstream(p: Plan, name: str) -> set[str]:
    seen, todo = set(), list(p.upstream[name])
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo += p.upstream[u]
    return seen


def client_for(*, workers: int | None, scheduler: str | None):
    """A Dask client: a local cluster bound to loopback (each worker with a GPU of its own, when there are GPUs,
    for the stages that `uses_gpu`), or an existing scheduler.

    The local workers keep this process's thread settings (Dask's nanny would set OMP_NUM_THREADS=1 and the
    like), so their stages compute what `dvc repro`'s compute; see `driver_settings`. OMP_WAIT_POLICY in the
    environment wins over the PASSIVE set here."""
    import dask.config
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    # Set for good: a worker the nanny restarts reads them again. Not daemonic: the frames stage starts processes.
    # Each worker keeps all the driver's threads (fewer would change the features); OpenMP threads that sleep
    # rather than spin while they wait let N such workers share the cores (measured: 17.3 s against 34.5 s on
    # the two-video sample, 2 workers on 2 cores), and the results are the same.
    dask.config.set({"distributed.nanny.pre-spawn-environ": {"OMP_WAIT_POLICY": "PASSIVE"},
                     "distributed.worker.daemon": False})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the workers: a Ctrl-C is the driver's
    try:
        return Client(host="127.0.0.1", n_workers=workers or 2, threads_per_worker=1, dashboard_address=None,
                      processes=True, silence_logs=logging.CRITICAL, resources={"GPU": 1} if _gpu_count() else None)
    finally:
        signal.signal(signal.SIGINT, previous)  # owns its local cluster; a failure is reported once
