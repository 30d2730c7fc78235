from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.core import atomic
from pipeline.core.atomic import atomic_output

N_FILES = 3000
# Replaces `dst` with generation GEN (N files), through atomic_output as every stage does; says "ready" just before
# leaving the `with` block (where the old output is replaced), "done" once it is.
CHILD = """
import sys
from pathlib import Path
from pipeline.core.atomic import atomic_output
dst, gen, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with atomic_output(dst, directory=True) as tmp:
    for i in range(n):
        (tmp / f"{gen}-{i:04d}").write_text(f"{gen}:{i}")
    print("ready", flush=True)
print("done", flush=True)
"""


def test_success_replaces_existing_output(tmp_path):
    dst = tmp_path / "out.txt"
    dst.write_text("old")
    with atomic_output(dst) as tmp:
        tmp.write_text("new")
        assert dst.read_text() == "old"  # readers see the old version until the rename
    assert dst.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_or_interrupt_leaves_nothing_half_written(tmp_path, error):
    dst = tmp_path / "dir"
    with pytest.raises(error), atomic_output(dst, directory=True) as tmp:
        (tmp / "a.jpg").write_bytes(b"x")
        raise error()
    assert list(tmp_path.iterdir()) == []


def generation(gen: str) -> dict[str, str]:
    return {f"{gen}-{i:04d}": f"{gen}:{i}" for i in range(N_FILES)}


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()} if folder.is_dir() else {}


def replace_in_child(dst: Path, gen: str, kill_after: float | None = None) -> float:
    """Replace `dst` by generation `gen` in a child process; SIGKILL it `kill_after` s after it says it is about to
    replace. The seconds from then to its exit."""
    env = os.environ | {"PYTHONPATH": str(Path(atomic.__file__).resolve().parents[2])}
    with subprocess.Popen([sys.executable, "-c", CHILD, str(dst), gen, str(N_FILES)], stdout=subprocess.PIPE,
                          text=True, env=env) as child:
        assert child.stdout.readline() == "ready\n"
        start = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
        child.communicate()
    assert kill_after is not None or child.returncode == 0
    return time.monotonic() - start


def test_a_directory_output_sigkilled_while_replaced_is_wholly_old_or_wholly_new(tmp_path):
    """3000 files replaced by 3000 others, the writer SIGKILLed at random instants spread over the replace (and a
    little after): each time the output is one generation or the other, whole; a later run cleans what is left."""
    dst = tmp_path / "out"
    replace_in_child(dst, "g00")
    replace_time = replace_in_child(dst, "g01")  # ready -> exit of an uninterrupted replace of 3000 files
    rng, current, mid_replace = random.Random(0), "g01", 0
    for trial in range(2, 17):
        gen = f"g{trial:02d}"
        replace_in_child(dst, gen, kill_after=rng.uniform(0, 1.5 * replace_time))
        found = contents(dst)
        whole = [g for g in (current, gen) if found == generation(g)]
        assert whole, f"trial {trial}: {dst} holds {len(found)} files, neither generation {current} nor {gen} whole"
        current = whole[0]
        mid_replace += bool(list(tmp_path.glob(".out.tmp-*")))  # killed before it removed the old output
    assert mid_replace >= 3, f"only {mid_replace} of 15 kills landed during the replace ({replace_time:.3f} s)"
    replace_in_child(dst, "g99")
    assert contents(dst) == generation("g99") and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_without_renameat2_a_directory_is_replaced_through_a_temp_aside(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_renameat2", None)  # as on a kernel or libc without it
    dst = tmp_path / "out"
    for gen in ("old", "new"):
        with atomic_output(dst, directory=True) as tmp:
            (tmp / f"{gen}.txt").write_text(gen)
    assert contents(dst) == {"new.txt": "new"} and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_running_writers_temp_is_left_and_a_dead_writers_removed(tmp_path):
    dst = tmp_path / "out"
    with subprocess.Popen(["sleep", "30"]) as live, subprocess.Popen(["true"]) as dead:
        dead.wait()
        for pid in (live.pid, dead.pid):
            (tmp_path / f".out.tmp-{pid}").mkdir()
            (tmp_path / f".out.tmp-{pid}" / "part.jpg").write_bytes(b"half")
        with atomic_output(dst) as tmp:
            tmp.write_text("x")
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".out.tmp-{live.pid}", "out"]
        live.kill()
    with atomic_output(dst) as tmp:  # its writer is gone now
        tmp.write_text("y")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
