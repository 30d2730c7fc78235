"""What the benchmarks share: a copy of the repository to run in, and a command's time and peak memory.

    from kit import copy_repo, measured
    root = copy_repo(Path(tmp) / "repo")
    seconds, peak_bytes = measured(["dvc", "repro", "frames"], cwd=root, env=env)

The tree's resident set sizes are summed every 50 ms (worker processes included; pages they share
with their parent count twice, so the figure errs high).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import torch

REPO = Path(__file__).resolve().parents[1]


def copy_repo(dst: Path) -> Path:
    """The repository's committed files copied into `dst` (outputs and caches left behind)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for f in filter(None, files.decode().split("\0")):
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / f, dst / f)
    return dst


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measured(cmd: list[str], *, cwd: Path, env: dict | None = None, output: list[str] | None = None
             ) -> tuple[float, int]:
    """(seconds, peak summed RSS in bytes) of `cmd`; raises CalledProcessError with its output on failure.
    With `output`, the command's stdout and stderr are appended to it."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a long output never blocks the command
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        ps, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                peak = max(peak, tree_rss(ps))
            except psutil.Error:
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - t
        log.seek(0)
        out = log.read().decode(errors="replace")
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out)
    if output is not None:
        output.append(out)
    return seconds, peak


def matmul_flops() -> float:
    """Float32 FLOP/s of a large matrix product on this machine: the rate no model's forward pass beats."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    t, n = time.perf_counter(), 10
    for _ in range(n):
        a @ b
    return n * 2 * 2048**3 / (time.perf_counter() - t)
