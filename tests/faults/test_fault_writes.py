"""A full disk or a read-only folder while writing frames, parquet, Zarr or a bundle: one message naming the
output and the space it needed, nothing partial, and a rerun once there is room gives a clean run's files.

Injected at the write layer (the call each writer makes raises ENOSPC partway), then for real on a small
tmpfs where the test runner may mount one (root with CAP_SYS_ADMIN, as here and in CI)."""
from __future__ import annotations

import errno
import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cliproject import boulderseg, project
from kit import failed_with, files

from pipeline import store
from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError
from pipeline.frames import extract_frames

ATTRS = {k: 0 for k in store.CONFIG}


def disk_full_after(calls: int, write):
    """`write` that works `calls` times, then raises ENOSPC as a full disk does."""
    count = {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]))
        return write(*args, **kwargs)

    return wrapped


def assert_disk_full_message(e: BouldersegError, out: Path) -> None:
    text = str(e)
    assert text.startswith(f"{out}: no space left on the device: it needs more than the ")
    assert " MiB free on the file system of " in text and " MiB were written when it filled up). " in text
    assert text.endswith("Free space there, or write the output elsewhere, then rerun; nothing partial was kept.")


def test_frames_disk_full_injected(tmp_path, bikes, monkeypatch):
    monkeypatch.setattr(Path, "write_bytes", disk_full_after(30, Path.write_bytes))
    with pytest.raises(BouldersegError) as e:
        extract_frames(bikes, tmp_path / "frames", fps=25, height=136, workers=1)
    assert_disk_full_message(e.value, tmp_path / "frames")
    assert list(tmp_path.iterdir()) == []


def test_parquet_disk_full_injected(tmp_path, monkeypatch):
    def half_then_full(table, where):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("[errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", half_then_full)
    out = tmp_path / "persons" / "v.parquet"
    with pytest.raises(BouldersegError) as e, atomic_output(out) as tmp:
        pq.write_table(pa.table({"frame": [0, 1]}), tmp)
    assert_disk_full_message(e.value, out)
    assert list((tmp_path / "persons").iterdir()) == []


def test_zarr_disk_full_injected(tmp_path, monkeypatch):
    from zarr.storage import _local

    monkeypatch.setattr(_local, "_put", disk_full_after(3, _local._put))
    out = tmp_path / "features" / "v.zarr"
    with pytest.raises(BouldersegError) as e:
        store.write(out, np.ones((600, 64), np.float16), np.zeros((600, 2), np.int32), ATTRS)
    assert_disk_full_message(e.value, out)
    assert list((tmp_path / "features").iterdir()) == []


def test_bundle_disk_full_injected(tmp_path, monkeypatch):
    from pipeline import bundle
    from pipeline.heads import build_head

    head = build_head("linear", feature_dim=8, n_classes=3, options={})
    monkeypatch.setattr(Path, "write_bytes", disk_full_after(0, Path.write_bytes))
    out = tmp_path / "models" / "x3d_xs" / "linear"
    with pytest.raises(BouldersegError) as e, atomic_output(out, directory=True) as tmp:
        bundle.save(tmp, head, {})
    assert_disk_full_message(e.value, out)
    assert list(out.parent.iterdir()) == []


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, ro=False) -> a tmpfs of that many bytes at a fresh folder; unmounted afterwards."""
    mounts = []

    def mount(size: int, *, ro: bool = False) -> Path:
        where = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{',ro' if ro else ''}", "tmpfs", str(where)],
                           capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", str(where)], check=False)


def test_frames_on_a_full_tmpfs_then_a_rerun_with_room_matches_a_clean_run(tmp_path, bikes, tmpfs):
    disk = tmpfs(512 * 1024)
    with pytest.raises(BouldersegError) as e:
        extract_frames(bikes, disk / "frames", fps=25, height=136, workers=2)
    assert_disk_full_message(e.value, disk / "frames")
    assert list(disk.iterdir()) == []
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    extract_frames(bikes, disk / "frames", fps=25, height=136, workers=2)
    extract_frames(bikes, tmp_path / "clean", fps=25, height=136, workers=2)
    assert files(disk / "frames") == files(tmp_path / "clean") and len(files(tmp_path / "clean")) == 251


def test_zarr_store_on_a_full_tmpfs(tmpfs):
    disk = tmpfs(256 * 1024)
    features = np.random.default_rng(0).standard_normal((2000, 256)).astype(np.float16)  # ~1 MB, incompressible
    with pytest.raises(BouldersegError) as e:
        store.write(disk / "v.zarr", features, np.zeros((2000, 2), np.int32), ATTRS)
    assert_disk_full_message(e.value, disk / "v.zarr")
    assert list(disk.iterdir()) == []


def test_parquet_on_a_full_tmpfs(tmpfs):
    disk = tmpfs(64 * 1024)
    (disk / "filler").write_bytes(bytes(60 * 1024))
    table = pa.table({"reason": [uuid.uuid4().hex * 4 for _ in range(2000)]})  # ~260 KB of text
    with pytest.raises(BouldersegError) as e, atomic_output(disk / "v.parquet") as tmp:
        pq.write_table(table, tmp, compression="none")
    assert_disk_full_message(e.value, disk / "v.parquet")
    assert [p.name for p in disk.iterdir()] == ["filler"]


def test_frames_into_a_read_only_folder(tmpfs, bikes):
    disk = tmpfs(1024 * 1024, ro=True)
    with pytest.raises(BouldersegError, match=r"frames: cannot write there \(Read-only file system: .*Make the folder "
                                              r"writable, or write the output elsewhere"):
        extract_frames(bikes, disk / "frames", fps=25, height=136, workers=1)


def test_labels_into_a_read_only_folder_exits_1_with_one_message(tmp_path, tmpfs, bikes):
    root = project(tmp_path, bikes)
    disk = tmpfs(1024 * 1024, ro=True)
    failed_with(boulderseg("labels", "clip", str(disk / "out.csv"), cwd=root), f"{disk / 'out.csv'}: cannot write there",
                "Read-only file system")
