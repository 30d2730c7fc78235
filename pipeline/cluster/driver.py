"""The driver: each stage of the plan checked by DVC once its upstream stages are done, submitted to the cluster
if it must run, and recorded as it finishes. A failure stops only its descendants; the others finish and are
recorded. Task keys carry a per-run token, so drivers of two projects can share one scheduler."""
from __future__ import annotations

import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.cluster import dvcrun, stagelock
from pipeline.cluster.worker import IgnoreInterrupt, run_on_worker
from pipeline.core.errors import BouldersegError

if TYPE_CHECKING:
    from distributed import Client


ENDING_S = 20.0  # seconds a cancelled stage gets to end before its processes are killed


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)  # ran (or restored, or verified) and recorded
    unchanged: list[str] = field(default_factory=list)  # checked: nothing to do
    failed: dict[str, str] = field(default_factory=dict)  # stage -> the tail of its error
    skipped: list[str] = field(default_factory=list)  # downstream of a failure
    recording_s: float = 0.0  # the driver's time in DVC's checks and records


def uses_gpu(stage: str) -> bool:
    """Whether a stage is one of the kinds that want a GPU (persons, features); frames and the rest are CPU work."""
    return stage.split("@")[0].startswith(("persons", "features-"))


def execute(p: dvcrun.Plan, client: Client, settings: dict[str, str | None], *,
            say: Callable[[str], None] = print) -> Outcome:
    """Run plan `p` on `client`: each stage checked (`dvcrun.check`) once every stage it depends on is done, as
    `dvc repro` checks it then; submitted if it must run; recorded as soon as it finishes (stages finishing
    together in one dvc.lock write). `settings`: `driver_settings()`, taken before the cluster started."""
    from distributed import as_completed

    say = _unless_hung_up(say)
    workers = client.scheduler_info()["workers"]
    gpu = any(w.get("resources", {}).get("GPU") for w in workers.values())
    token, out = uuid.uuid4().hex[:12], Outcome()
    before: dict[str, dict] = {}  # stage -> its inputs' hashes as checked before it ran
    running: dict[str, tuple[str, object]] = {}  # task key -> (stage, future)
    settled, stopped, ran_here = set(), set(), set()  # done or unchanged; failed or skipped; ran in this run
    waiting = list(p.order)
    completed = as_completed(loop=client.loop)
    logging.getLogger("dvc").setLevel(logging.ERROR)  # its chatter ("Updating lock file") is ours to say

    def dvc(fn, *args):  # a Ctrl-C waits for DVC's check or record to end
        t = time.perf_counter()
        try:
            with dvcrun.deferred_interrupt():
                return fn(*args)
        finally:
            out.recording_s += time.perf_counter() - t

    def fail(name: str, why: str) -> None:
        out.failed[name] = why
        stopped.add(name)
        say(f"failed: {name}")

    def record(finished: list) -> None:
        failures = dvc(dvcrun.record, [p.stages[n] for n, _ in finished], before) if finished else {}
        for name, result in finished:
            if name in failures:
                fail(name, failures[name])
                continue
            out.done.append(name)
            settled.add(name)
            ran_here.add(name)
            say(f"done: {name}" + (f" (in a fresh process: {result['fresh']})" if result["fresh"] else ""))

    def settle() -> None:
        """Check every waiting stage whose upstream stages are all settled; submit those that must run."""
        progress = True
        while progress:
            progress = False
            for name in list(waiting):
                up = p.upstream[name]
                if stopped.intersection(up):
                    waiting.remove(name)
                    out.skipped.append(name)
                    stopped.add(name)
                    progress = True
                elif settled.issuperset(up):
                    waiting.remove(name)
                    progress = True
                    stage = p.stages[name]
                    try:
                        if dvcrun.runs_a_command(stage):  # DVC may restore its outputs: none of an earlier run
                            stagelock.wait_ended(stage.repo.root_dir, name, say=say)  # may still write them
                        verdict = dvc(dvcrun.check, stage)
                    except Exception as e:  # noqa: BLE001 - DVC's refusal of one stage is that stage's failure
                        fail(name, str(e))
                        continue
                    if verdict == "unchanged":
                        out.unchanged.append(name)
                        settled.add(name)
                        if ran_here.intersection(up):
                            say(f"unchanged: {name} (its inputs are as recorded)")
                    elif verdict == "recorded":
                        out.done.append(name)
                        settled.add(name)
                        ran_here.add(name)
                        say(f"done: {name} (by DVC: {'restored from the run cache' if dvcrun.runs_a_command(stage) else 'verified'})")
                    else:
                        before[name] = dvcrun.inputs(stage)
                        future = client.submit(
                            run_on_worker, name, stage.cmd, [o.fs_path for o in stage.outs if not o.persist],
                            stage.wdir, {"DVC_ROOT": stage.repo.root_dir, "DVC_STAGE": name}, settings=settings,
                            key=f"boulderseg-{token}-{name}", pure=False,
                            resources={"GPU": 1} if gpu and uses_gpu(name) else None)
                        running[future.key] = (name, future)
                        completed.add(future)

    def take(futures) -> list:
        finished = []
        for future in futures:
            name, _ = running.pop(future.key)
            if future.status == "finished":
                finished.append((name, future.result()))
            else:
                fail(name, str(future.exception() if future.status == "error" else future.status))
        return finished

    try:
        settle()
        while not completed.is_empty():
            record(take(completed.next_batch(block=True)))
            settle()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP
        client.cancel([f for _, f in running.values() if f.status != "finished"])
        record(take([f for _, f in list(running.values()) if f.status == "finished"]))  # finished before it
        if running:
            names = sorted(n for n, _ in running.values())
            say(f"cancelled: {', '.join(names)}; waiting for their processes to end")
            deadline = time.monotonic() + ENDING_S  # one grace for them all
            for name in names:  # a cancelled task ends its stage; one that does not within the grace is killed
                try:
                    stagelock.wait_ended(p.stages[name].repo.root_dir, name, grace=deadline - time.monotonic())
                except BouldersegError as e:  # named; the interrupt stays what ends the run
                    say(f"not ended: {e}")
        raise
    return out


def _unless_hung_up(say: Callable[[str], None]) -> Callable[[str], None]:
    """`say`, silent once its terminal is gone (after a SIGHUP a write to it fails), so the run still ends well."""
    def quiet(line: str) -> None:
        with contextlib.suppress(OSError):
            say(line)

    return quiet


def check_workers(client: Client) -> None:
    """Refuse workers that run more than one thread: a stage run in a worker changes its working directory,
    environment and stdout, which two stages at once on one worker would share."""
    many = {w["name"]: w["nthreads"] for w in client.scheduler_info()["workers"].values() if w["nthreads"] != 1}
    if many:
        address = client.scheduler.address
        raise BouldersegError(
            f"worker(s) {', '.join(f'{n} ({t} threads)' for n, t in many.items())} run more than one thread; each "
            f"boulderseg worker must run one. Start them as `dask worker {address} --nthreads 1` (as many as you "
            "want per machine with --nworkers N).")


def client_for(*, workers: int | None, scheduler: str | None) -> Client:
    """A Dask client: a local cluster on loopback with TLS and temporary credentials, so no other user can connect
    (each worker with a GPU of its own, when there are GPUs, for the stages that `uses_gpu`), or an existing
    scheduler (its TLS settings from Dask's configuration: see docs/cluster.md)."""
    import dask.config
    from distributed import Client

    from pipeline.cluster.worker import usable_gpus

    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError, TypeError) as e:  # TypeError: a tls:// address with no TLS configured
            raise BouldersegError(
                f"cannot connect to the Dask scheduler at {scheduler} ({e}). Is it running there? A scheduler on "
                "TLS needs your certificate in DASK_DISTRIBUTED__COMM__TLS__* (docs/cluster.md, Workers on a cluster), "
                "and its tls:// address.") from None
        check_workers(client)
        return client
    # Set for good: a worker the nanny restarts reads them again. Not daemonic: the frames stage starts processes.
    # Each worker keeps all the driver's threads (fewer would change the features); OpenMP threads that sleep
    # rather than spin while they wait let N such workers share the cores (measured: 17.3 s against 34.5 s on
    # the two-video sample, 2 workers on 2 cores), and the results are the same.
    dask.config.set({"distributed.nanny.pre-spawn-environ": {"OMP_WAIT_POLICY": "PASSIVE"},
                     "distributed.worker.daemon": False})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the first workers; restarts: the plugin
    try:
        client = Client(host="127.0.0.1", n_workers=workers or 2, threads_per_worker=1, dashboard_address=None,
                        processes=True, security=True, silence_logs=logging.CRITICAL,
                        resources={"GPU": 1} if usable_gpus() else None)
    finally:
        signal.signal(signal.SIGINT, previous)  # owns its local cluster; a failure is reported once
    client.register_plugin(IgnoreInterrupt())
    return client
