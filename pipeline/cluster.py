"""`boulderseg repro --workers N | --scheduler ADDRESS`: DVC's stale stages run on a Dask cluster, DVC still the record.

DVC has no parallel stage execution. Here the driver asks DVC which stages are stale (`Repo.status`, plus
everything downstream of one in `repo.index.graph`, since a stale upstream stage makes its successors stale
only once it reruns), submits each as one Dask task whose inputs are exactly its stale upstream tasks, and
records every finished stage in dvc.lock with DVC's own `Repo.commit(stage, force=True)`, in this process.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import BouldersegError


@dataclass(frozen=True)
class Plan:
    order: list[str]  # stale stages, upstream first
    cmd: dict[str, str]
    outs: dict[str, list[str]]
    upstream: dict[str, list[str]]  # each stage's stale direct dependencies


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> the tail of its error
    skipped: list[str] = field(default_factory=list)  # downstream of a failure
    recording_s: float = 0.0  # the driver's time in DVC's commit


def plan(repo, targets: Sequence[str] = ()) -> Plan:
    """The stale stages of `repo` (restricted to `targets` and what they need: a stage name, or a stage group
    such as `frames` or `features-pytorchvideo`), in an order where each comes after its dependencies."""
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
                upstream={s.addressing: [d.addressing for d in graph.successors(s) if d in stale] for s in order})


def driver_settings() -> dict[str, str | None]:
    """The driver's values of what Dask's nanny sets in every worker (OMP_NUM_THREADS=1 and the like): the
    stage gets them back, so it computes exactly what `dvc repro` computes (torch's CPU kernels give other
    float results at other thread counts, and dvc.lock must not change)."""
    import dask.config
    import distributed  # noqa: F401 - registers its config, which names those settings

    return {k: os.environ.get(k) for k in dask.config.get("distributed.nanny.pre-spawn-environ")}


def run_stage(cmd: str, outs: list[str], cwd: str, settings: dict[str, str | None], *upstream: str) -> str:
    """One stage on a worker: its outputs removed (as `dvc repro` does), then its command; its output's tail.

    A worker with a GPU sees only its own (CUDA_VISIBLE_DEVICES); `settings`: see `driver_settings`."""
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
    r = subprocess.run(cmd, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-1500:]}")
    return (r.stdout + r.stderr).strip()[-500:]


@functools.cache  # once per worker process
def _gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def execute(repo, p: Plan, client, settings: dict[str, str | None], *, say=print) -> Outcome:
    """Submit `p` to `client` and record each stage as it finishes; a failure stops only its descendants.
    `settings`: `driver_settings()`, taken before the cluster started (starting one sets them here too)."""
    from distributed import as_completed

    futures = {}
    for name in p.order:
        futures[name] = client.submit(run_stage, p.cmd[name], p.outs[name], str(Path(repo.root_dir)), settings,
                                      *[futures[u] for u in p.upstream[name]], key=f"stage-{name}", pure=False)
    names = {f.key: n for n, f in futures.items()}
    outcome = Outcome()
    try:
        for future in as_completed(futures.values()):
            name = names[future.key]
            if future.status == "finished":
                t = time.perf_counter()
                repo.commit(name, force=True)
                outcome.recording_s += time.perf_counter() - t
                outcome.done.append(name)
                say(f"done: {name}")
            elif any(futures[u].status == "error" for u in _all_upstream(p, name)):  # Dask passed its error down
                outcome.skipped.append(name)
            else:
                outcome.failed[name] = str(future.exception())
                say(f"failed: {name}")
    except KeyboardInterrupt:
        client.cancel(list(futures.values()))
        raise
    return outcome


def _all_upstream(p: Plan, name: str) -> set[str]:
    seen, todo = set(), list(p.upstream[name])
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo += p.upstream[u]
    return seen


def client_for(*, workers: int | None, scheduler: str | None):
    """A Dask client: a local cluster bound to loopback, or an existing scheduler."""
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    return Client(host="127.0.0.1", n_workers=workers or 2, threads_per_worker=1, dashboard_address=None,
                  processes=True, silence_logs=logging.CRITICAL)  # owns its local cluster; a failure is reported once
