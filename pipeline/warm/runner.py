"""Run a stage module in this process as `python -m stages.NAME` would run it in a fresh one.

Used by the warm server and by the cluster's workers: the client's argv, cwd, environment and stdout/stderr,
and the process state a job may change put back before each job.
"""
from __future__ import annotations

import hashlib
import os
import re
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IN_SERVER = "BOULDERSEG_WARM_SERVER"  # set where stages run in-process: they never hand off again
STAGE_MODULE = re.compile(r"stages\.[a-z][a-z_]*")  # not stages.__init__


def code_key(root: Path) -> str:
    """The project's code under `root` (pipeline/ and stages/, names and bytes): equal keys, equal code."""
    h = hashlib.sha256()
    for f in sorted(p for d in ("pipeline", "stages") for p in (root / d).rglob("*.py")):
        h.update(f"{f.relative_to(root)}\n".encode() + f.read_bytes())
    return h.hexdigest()


LOADED = code_key(ROOT)  # the code this process runs: taken as it first imports pipeline's machinery


def is_stage_module(module: str, root: Path = ROOT) -> bool:
    """Whether `module` is one of this project's stages (`stages.<name>` with a file in `root`/stages)."""
    return bool(STAGE_MODULE.fullmatch(module)) and (root / "stages" / f"{module.split('.')[1]}.py").is_file()


def process_defaults() -> Callable[[], None]:
    """What a fresh process starts with that a job may change (ultralytics sets torch to one thread on a
    2-core machine): a function that puts it back, so every job starts as in a process of its own."""
    import cv2
    import torch

    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    deterministic = torch.are_deterministic_algorithms_enabled()

    def reset() -> None:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
        torch.use_deterministic_algorithms(deterministic)

    return reset


def run_module(request: dict) -> int:
    """Run a stage module as `python -m` would, with the request's argv, cwd and environment: its exit code."""
    try:  # a working directory gone while the job was queued fails the job, not the process that runs it
        os.environ.clear()
        os.environ.update(request["env"], **{IN_SERVER: "1"})
        os.chdir(request["cwd"])
        sys.argv = [request["module"], *request["argv"]]
        sys.modules.pop(request["module"], None)  # runpy warns when an earlier job left it imported
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - printed to the client, as the stage's own process would
        traceback.print_exc()
        return 1
    return 0


def run_in_process(request: dict, out_fd: int, err_fd: int, reset: Callable[[], None], *,
                   run: Callable[[dict], int] = run_module) -> int:
    """`run(request)` with fds 1 and 2 on `out_fd`/`err_fd`, after `reset()`; this process's environment,
    working directory and fds 1/2 are put back afterwards, whatever the job did. A Ctrl-C gives 130."""
    saved_env = dict(os.environ)
    try:
        saved_cwd = os.getcwd()
    except FileNotFoundError:  # the folder it was in was removed (a project deleted, then cloned again in its place)
        saved_cwd = "/"
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(out_fd, 1), os.dup2(err_fd, 2)
    try:
        reset()
        return run(request)
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        for fd, was in zip((1, 2), saved):
            os.dup2(was, fd)
            os.close(was)
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
