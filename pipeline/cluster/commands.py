"""`repro` on a Dask cluster. `pipeline/cli.py` declares it."""
from __future__ import annotations

from typing import Annotated

import typer


def repro(
    targets: Annotated[list[str] | None, typer.Argument(help="Stages or stage groups (frames, features-pytorchvideo…); default: all.")] = None,
    workers: Annotated[int | None, typer.Option(help="Start a local Dask cluster of this many workers (one GPU each when there are GPUs).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Use an existing Dask scheduler; it must speak TLS: tls://HOST:8786.")] = None,
) -> None:
    """Run the stale stages on a Dask cluster, each as soon as its inputs are done; dvc.lock is written by DVC itself.

    The same stages `dvc repro` would run, with the same commands; afterwards `dvc status` is clean. A failing
    stage stops only its descendants; the others finish and are recorded. Ctrl-C, SIGTERM or SIGHUP: what
    finished is recorded, and every stage the run started is ended before it exits.
    """
    import time

    from dvc.repo import Repo

    from pipeline.cluster.driver import client_for, execute
    from pipeline.cluster.dvcrun import dvc_errors, locked, plan, stops_interrupt
    from pipeline.cluster.worker import driver_settings
    from pipeline.core.errors import BouldersegError

    if workers is not None and scheduler is not None:
        raise BouldersegError("give --workers N (a local cluster) or --scheduler ADDRESS, not both.")
    t = time.perf_counter()
    with stops_interrupt(), dvc_errors():
        repo = Repo(".")
        with locked(repo):
            todo = plan(repo, targets or [])
            planned = time.perf_counter() - t
            settings = driver_settings()
            with client_for(workers=workers, scheduler=scheduler) as client:
                outcome = execute(todo, client, settings, say=typer.echo)
    if outcome.failed:
        lines = [f"  {name}: {error}" for name, error in outcome.failed.items()]
        raise BouldersegError(f"{len(outcome.failed)} stage(s) failed; {len(outcome.done)} done and recorded"
                              + (f"; not run, downstream of a failure: {', '.join(outcome.skipped)}" if outcome.skipped else "")
                              + ":\n" + "\n".join(lines) + "\nFix it and run `boulderseg repro` again: it runs only what is left.")
    if not outcome.done:
        typer.echo("nothing to run: every stage is up to date.")
        return
    typer.echo(f"{len(outcome.done)} stage(s) done and recorded in dvc.lock, {len(outcome.unchanged)} up to date "
               f"(driver: planning {planned:.1f} s, DVC's checks and records {outcome.recording_s:.1f} s)")
