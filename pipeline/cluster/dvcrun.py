"""DVC's side of a cluster run: which stages `dvc repro` would consider, whether each must run, and its record.

Every decision is DVC's own code, called as `dvc repro` calls it: `plan_repro` over the graph with frozen stages cut
from their dependencies; `Stage.changed` once the stage's upstream stages are done; data sources, imports and frozen
stages handled in this process as DVC's `_reproduce_stage` handles them (a worker never touches them); `remove_outs` and the run
cache before a command runs; `Stage.save` and `Stage.commit` after it. Only DVC's writes of dvc.lock and of its rwlock
file differ: each goes to a temp file renamed over the file, so an interrupt or a kill at any instant leaves the
previous or the new one, whole.
"""
from __future__ import annotations

import os
import signal
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.atomic import clean_stale
from pipeline.core.errors import BouldersegError, Stopped

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc.stage import Stage


@dataclass(frozen=True)
class Plan:
    order: list[str]  # the stages `dvc repro` would check, each after its dependencies
    upstream: dict[str, list[str]]  # each stage's direct dependencies among them (frozen stages have none)
    stages: dict = field(repr=False)  # name -> DVC's Stage


def plan(repo: Repo, targets: Sequence[str] = ()) -> Plan:
    """What `dvc repro [TARGETS]` would check, in its order: each target (a stage, or a group such as `frames` or
    `features-pytorchvideo`; default: every stage of dvc.yaml) and everything it depends on. Call it, and run its
    plan, under one `locked(repo)`."""
    from dvc.repo.reproduce import get_active_graph, plan_repro

    graph = get_active_graph(repo.index.graph)  # edges point from a stage to the stages it depends on
    pipeline = [s for s in graph.nodes if s.dvcfile.path == os.path.join(repo.root_dir, "dvc.yaml")]
    wanted = [s for s in pipeline if not targets or any(s.addressing == t or s.addressing.startswith(f"{t}@")
                                                        for t in targets)]
    if targets and not wanted:
        raise BouldersegError(f"no stage named {', '.join(targets)} in dvc.yaml; `dvc stage list` lists them.")
    order = plan_repro(graph, wanted)
    return Plan(order=[s.addressing for s in order],
                upstream={s.addressing: [d.addressing for d in graph.successors(s)] for s in order},
                stages={s.addressing: s for s in order})


@contextmanager
def locked(repo: Repo) -> Iterator[None]:
    """The repo lock, held for the run as `dvc repro` holds it, with DVC's rwlock file (.dvc/tmp/rwlock) written
    whole. DVC truncates and rewrites that file in place each time it checks or records a stage, so a driver killed
    in that instant (SIGKILL, a machine going down) would leave every later DVC command failing on it."""
    import dvc.rwlock
    from dvc.repo import lock_repo

    edit = dvc.rwlock._edit_rwlock
    dvc.rwlock._edit_rwlock = lambda lock_dir, fs, hardlink: edit(lock_dir, _WholeWrites(fs), hardlink)
    try:
        with lock_repo(repo):
            yield
    finally:
        dvc.rwlock._edit_rwlock = edit


class _WholeWrites:
    """A DVC filesystem whose files opened for writing are temp files beside them, renamed over them when closed."""

    def __init__(self, fs: object) -> None:
        self.fs = fs

    def __getattr__(self, name: str) -> object:
        return getattr(self.fs, name)

    @contextmanager
    def open(self, path: str, mode: str = "r", **kwargs: object) -> Iterator:
        if "w" not in mode:
            with self.fs.open(path, mode, **kwargs) as f:
                yield f
            return
        dst = Path(path)
        clean_stale(dst)  # a driver killed between its write and its rename
        tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())  # else a power loss can leave the renamed file empty
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)


def runs_a_command(stage: Stage) -> bool:
    """Whether `dvc repro` would run the stage's command (not a data source, an import or a frozen stage)."""
    return bool(stage.cmd) and not stage.frozen and not stage.is_import


def check(stage: Stage) -> str:
    """Prepare `stage` as `dvc repro` does and say what is left: "unchanged" (nothing to do), "recorded" (DVC
    handled it here: a data source or frozen stage verified, or outputs restored from the run cache), or "run"
    (its outputs removed: run its command, then `record` it)."""
    from dvc.stage import PipelineStage
    from dvc.stage.cache import RunCacheNotFoundError

    if not runs_a_command(stage):  # DVC's `_reproduce_stage`, with dvc.lock written as `record` writes it
        if not stage.reproduce():
            return "unchanged"
        if isinstance(stage, PipelineStage):
            _dump_lock([stage])
        else:
            _dump_dvcfile(stage)
        return "recorded"
    if not stage.changed():
        return "unchanged"
    stage.remove_outs(ignore_remove=False, force=False)
    try:
        stage.repo.stage_cache.restore(stage)
    except RunCacheNotFoundError:
        stage.save_deps()
        return "run"
    failures = record([stage])
    if failures:
        raise BouldersegError(failures[stage.addressing])
    return "recorded"


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """A Ctrl-C, SIGTERM or SIGHUP inside the block is raised when it ends (as `interruption`). Python runs signal
    handlers in the main thread whichever thread the signal reached (Dask's client runs several), so a handler
    that only takes note is never cut off; blocking signals in the main thread alone is not enough. Every call
    into DVC that writes needs it: DVC writes its rwlock file and dvc.lock in place, and an interrupt inside such
    a write leaves it unreadable."""
    caught: list[int] = []
    previous: dict = {}
    try:
        for s in STOPS:  # one by one, so that a signal that comes meanwhile leaves none swapped for good
            previous[s] = signal.signal(s, lambda signum, _: caught.append(signum))
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise interruption(caught[0])


STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def interruption(signum: int) -> KeyboardInterrupt:
    """What a stop signal raises in the driver: KeyboardInterrupt for Ctrl-C, `Stopped` for the others."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


@contextmanager
def stops_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP stop the driver as a Ctrl-C does: the run cancelled, what finished
    recorded, every stage ended; it exits 128+N."""
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous: dict = {}
    try:
        for s in STOPS[1:]:
            previous[s] = signal.signal(s, stop)
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def dvc_errors() -> Iterator[None]:
    """DVC's refusals as one clear message each, not its tracebacks."""
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.lock import LockError

    try:
        yield
    except LockError:
        raise BouldersegError(
            "another DVC command is running in this project (a `boulderseg repro`, `dvc repro`, `dvc status`…): "
            "it holds .dvc/tmp/lock. Wait for it to end, then run again.") from None
    except NotDvcRepoError:
        raise BouldersegError(f"{os.getcwd()} is not in a DVC project: run this in the project's folder (the one "
                              "that holds dvc.yaml and .dvc/).") from None
    except DvcException as e:
        cause = f": {' '.join(str(e.__cause__).split())}" if e.__cause__ else ""
        raise BouldersegError(f"DVC refused the project: {e}{cause}") from None


def inputs(stage: Stage) -> dict[str, object]:
    """Each dependency of `stage` (files, folders, params) and its hash as last computed."""
    return {str(d): d.hash_info for d in stage.deps}


def record(stages: list[Stage], before: dict[str, dict] | None = None) -> dict[str, str]:
    """DVC's own record of finished stages, as `Stage.run` and `dvc repro` make it: each stage's deps and outs
    hashed and its outs cached (`Stage.save`, into the run cache unless an output is not cached, as there;
    `Stage.commit`), then one write of dvc.lock for those that succeeded. A stage whose record fails (it exited 0
    but left no output; the disk filled up; an input is not as `before[stage]`, its `inputs` as it started) is not
    recorded: {stage: why}."""
    failures: dict[str, str] = {}
    saved = []
    for stage in stages:
        try:
            if stage.addressing in (before or {}):
                stage.save_deps()
                moved = [d for d, h in inputs(stage).items() if before[stage.addressing].get(d) != h]
                if moved:
                    failures[stage.addressing] = (
                        f"{', '.join(moved)} changed while it ran, so its outputs may come from the old content: "
                        "not recorded. Run again to rerun it on the new one.")
                    continue
            stage.save(run_cache=all(o.use_cache for o in stage.outs if not (o.is_metric or o.is_plot)))
            stage.commit()
        except Exception as e:  # noqa: BLE001 - any failure to record a stage is that stage's failure
            failures[stage.addressing] = f"recording it failed: {e}"
        else:
            saved.append(stage)
    for path in dict.fromkeys(s.dvcfile.path for s in saved):
        mine = [s for s in saved if s.dvcfile.path == path]
        try:
            _dump_lock(mine)
        except OSError as e:
            failures |= {s.addressing: f"writing {path} failed: {e}" for s in mine}
    return failures


def _dump_lock(stages: list[Stage]) -> None:
    """DVC's dump of `stages` into their lock file, written to a temp copy (with the file's mode) renamed over it."""
    from dvc.dvcfile import Lockfile

    lock = Path(stages[0].dvcfile._lockfile.path)
    with _beside(lock) as tmp:
        if lock.exists():
            shutil.copyfile(lock, tmp)
            shutil.copymode(lock, tmp)
        Lockfile(stages[0].repo, str(tmp), verify=False).dump_stages(stages)


def _dump_dvcfile(stage: Stage) -> None:
    """DVC's dump of a data source's .dvc file (`SingleStageFile.dump`), written to a temp file renamed over it."""
    from dvc.stage import serialize
    from dvc.utils.serialize import dump_yaml

    dvcfile = Path(stage.dvcfile.path)
    with _beside(dvcfile) as tmp:
        dump_yaml(str(tmp), serialize.to_single_stage_file(stage))
        if dvcfile.exists():
            shutil.copymode(dvcfile, tmp)
    stage.repo.scm_context.track_file(stage.dvcfile.relpath)


@contextmanager
def _beside(path: Path) -> Iterator[Path]:
    """A temp path beside `path` for the block to write; then flushed to disk and renamed over `path`. A leftover
    of a driver killed mid-write is removed first; an error leaves `path` as it was and no temp behind."""
    clean_stale(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
