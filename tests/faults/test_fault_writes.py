"""A full disk or a read-only folder while writing frames, parquet, Zarr or a bundle: one message naming the
output and the space it needed, nothing partial, and a rerun once there is room gives a clean run's files.

Each runs the code that writes the output (the frames, persons and train stages, the feature store): injected at
the lowest write call it makes (which raises ENOSPC partway), then for real on a small tmpfs, through the command
line. The tmpfs tests need root with CAP_SYS_ADMIN (as in CI): where they cannot mount, they fail, saying so."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from cliproject import boulderseg, project
from kit import failed_with, files

from conftest import REPO
from e2e import ENV
from pipeline.core.errors import BouldersegError
from pipeline.features import store
from pipeline.features.windows import windows
from pipeline.media.frames import extract_frames

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
        extract_frames(bikes, tmp_path / "frames", fps=25, short_side=136, workers=1)
    assert_disk_full_message(e.value, tmp_path / "frames")
    assert list(tmp_path.iterdir()) == []


def stage_params(root: Path) -> Path:
    """`root/params.yaml`: two videos of two climbs, the hog person filter (no weights), the linear head trained for
    two epochs, every stage in its own process."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["videos"] = {f"v{i}": {"climb": f"c{i}", "video": f"v{i}.mp4", "annotation": f"v{i}.xlsx"} for i in (1, 2)}
    p["persons"]["detector"] = "hog"
    p["persons"]["short_side"] = None  # the photographs have no source video to decode
    p["features"]["crop"] = "none"  # nor a persons track to cut them by
    p["train"].update(folds=2, heads={"linear": p["train"]["heads"]["linear"] | {"epochs": 2}})
    p["runtime"]["warm_seconds"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    return root


def train_inputs(root: Path, n_frames: int = 120) -> Path:
    """What the train stage of x3d_xs reads, where it reads it from by default: labels, persons, feature stores
    (random features) and folds of the videos in `root/params.yaml`."""
    p = yaml.safe_load((stage_params(root) / "params.yaml").read_text())
    rng, ranges = np.random.default_rng(0), windows(n_frames, window=16, stride=8)
    attrs = ATTRS | {"backbone": "x3d_xs", "family": "pytorchvideo", "fps": 25, "window": 16, "stride": 8,
                     "dtype": "float16", "n_frames": n_frames, "frame_height": 136, "precision": "float32",
                     "preprocessing": {}}
    for folder in ("data/labels", "data/persons"):
        (root / folder).mkdir(parents=True)
    for name in p["videos"]:
        labels = rng.choice(p["labels"]["classes"], n_frames)
        pd.DataFrame({"frame": range(n_frames), "label": labels}).to_csv(root / f"data/labels/{name}.csv", index=False)
        pq.write_table(pa.table({"frame": range(n_frames), "person": [True] * n_frames}),
                       root / f"data/persons/{name}.parquet")
        store.write(root / f"features/x3d_xs/{name}.zarr", rng.standard_normal((len(ranges), 8)).astype(np.float16),
                    ranges, attrs)
    (root / "reports").mkdir()
    (root / "reports/folds.json").write_text(json.dumps({"fold0": ["v1"], "fold1": ["v2"]}))
    return root


def test_parquet_disk_full_injected(tmp_path, photo_frames, monkeypatch):
    from stages import persons

    write_table = pq.ParquetWriter.write_table

    def one_row_then_full(writer, table, *args, **kwargs):  # pyarrow's own words for a full disk
        write_table(writer, table.slice(0, 1), *args, **kwargs)
        raise OSError("[errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", one_row_then_full)
    monkeypatch.chdir(stage_params(tmp_path))
    out = tmp_path / "data/persons/v1.parquet"
    with pytest.raises(BouldersegError) as e:
        persons.main(photo_frames, out)
    assert_disk_full_message(e.value, out)
    assert list(out.parent.iterdir()) == []


def test_zarr_disk_full_injected(tmp_path, monkeypatch):
    from zarr.storage import _local

    monkeypatch.setattr(_local, "_put", disk_full_after(3, _local._put))
    out = tmp_path / "features" / "v.zarr"
    with pytest.raises(BouldersegError) as e:
        store.write(out, np.ones((600, 64), np.float16), np.zeros((600, 2), np.int32), ATTRS)
    assert_disk_full_message(e.value, out)
    assert list((tmp_path / "features").iterdir()) == []


def test_bundle_disk_full_injected(tmp_path, monkeypatch):
    from stages import train

    monkeypatch.chdir(train_inputs(tmp_path))
    monkeypatch.setattr(Path, "write_bytes", disk_full_after(1, Path.write_bytes))  # fold0.pt, then the disk is full
    with pytest.raises(BouldersegError) as e:
        train.main("x3d_xs", "linear")
    assert_disk_full_message(e.value, Path("models/x3d_xs/linear"))
    assert list((tmp_path / "models/x3d_xs").iterdir()) == [] and not (tmp_path / "reports/predictions").exists()


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, ro=False) -> a tmpfs of that many bytes at a fresh folder; unmounted afterwards. Fails (never
    skips) where it cannot mount one: these tests must run in CI, which runs them as root."""
    mounts = []

    def mount(size: int, *, ro: bool = False) -> Path:
        where = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}{',ro' if ro else ''}", "tmpfs", str(where)]
        if shutil.which("mount") is None:
            pytest.fail("these tests mount a small tmpfs, and `mount` is not installed: install util-linux's mount "
                        "(apt-get install mount), as .ci/run does")
        r = subprocess.run(command, capture_output=True, text=True)
        if r.returncode:
            pytest.fail(f"`{' '.join(command)}` failed ({r.stderr.strip().rstrip('.')}). These tests need root with "
                        "CAP_SYS_ADMIN (CI runs them as root; in a container, run it with --cap-add SYS_ADMIN or "
                        "--privileged)")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", str(where)], check=False)


def fill(disk: Path) -> None:
    """Write zeros into `disk/filler` until the file system is full."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, bytes(4096)):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def test_frames_on_a_full_tmpfs_then_a_rerun_with_room_matches_a_clean_run(tmp_path, bikes, tmpfs):
    disk = tmpfs(512 * 1024)
    with pytest.raises(BouldersegError) as e:
        extract_frames(bikes, disk / "frames", fps=25, short_side=136, workers=2)
    assert_disk_full_message(e.value, disk / "frames")
    assert list(disk.iterdir()) == []
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    extract_frames(bikes, disk / "frames", fps=25, short_side=136, workers=2)
    extract_frames(bikes, tmp_path / "clean", fps=25, short_side=136, workers=2)
    assert files(disk / "frames") == files(tmp_path / "clean") and len(files(tmp_path / "clean")) == 251


def test_zarr_store_on_a_full_tmpfs(tmpfs):
    disk = tmpfs(256 * 1024)
    features = np.random.default_rng(0).standard_normal((2000, 256)).astype(np.float16)  # ~1 MB, incompressible
    with pytest.raises(BouldersegError) as e:
        store.write(disk / "v.zarr", features, np.zeros((2000, 2), np.int32), ATTRS)
    assert_disk_full_message(e.value, disk / "v.zarr")
    assert list(disk.iterdir()) == []


def test_parquet_on_a_full_tmpfs_exits_1_with_one_message(tmp_path, photo_frames, tmpfs):
    disk = tmpfs(256 * 1024)
    fill(disk)
    r = boulderseg("stage", "persons", str(photo_frames), str(disk / "v1.parquet"), cwd=stage_params(tmp_path))
    failed_with(r, f"{disk / 'v1.parquet'}: no space left on the device", "nothing partial was kept")
    assert [p.name for p in disk.iterdir()] == ["filler"]


def test_bundle_on_a_full_tmpfs_exits_1_with_one_message(tmp_path, tmpfs):
    disk = tmpfs(256 * 1024)
    fill(disk)
    r = boulderseg("stage", "train", "x3d_xs", "linear", "--models-dir", str(disk), cwd=train_inputs(tmp_path))
    failed_with(r, f"{disk / 'x3d_xs/linear'}: no space left on the device", "nothing partial was kept")
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "x3d_xs"] and list((disk / "x3d_xs").iterdir()) == []
    assert not (tmp_path / "reports/predictions").exists()


def test_frames_into_a_read_only_folder(tmpfs, bikes):
    disk = tmpfs(1024 * 1024, ro=True)
    with pytest.raises(BouldersegError, match=r"frames: cannot write there \(Read-only file system: .*Make the folder "
                                              r"writable, or write the output elsewhere"):
        extract_frames(bikes, disk / "frames", fps=25, short_side=136, workers=1)


def test_labels_into_a_read_only_folder_exits_1_with_one_message(tmp_path, tmpfs, bikes):
    root = project(tmp_path, bikes)
    disk = tmpfs(1024 * 1024, ro=True)
    failed_with(boulderseg("stage", "labels", "clip", str(disk / "out.csv"), cwd=root), f"{disk / 'out.csv'}: cannot write there",
                "Read-only file system")


def test_dvc_lock_written_on_a_full_disk_stays_whole_and_leaves_no_temp(tmpfs, monkeypatch):
    """The cluster driver's write of dvc.lock (`dvcrun._dump_lock`) copies the lock file to a temp beside it, then
    dumps the finished stages into it: the copy is what fails on a full disk."""
    from dvc.repo import Repo

    from pipeline.cluster import dvcrun

    root = tmpfs(4 << 20) / "toy"
    root.mkdir()
    (root / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo 1 > a.txt\n    outs: [a.txt]\n")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"]):
        subprocess.run(command, cwd=root, env=ENV, check=True)
    before = (root / "dvc.lock").read_bytes()
    fill(root.parent)
    monkeypatch.chdir(root)  # as the driver runs: in the project
    stage = dvcrun.plan(Repo(".")).stages["a"]
    with pytest.raises(OSError) as e:
        dvcrun._dump_lock([stage])
    assert e.value.errno == errno.ENOSPC
    assert (root / "dvc.lock").read_bytes() == before
    assert not [p.name for p in root.iterdir() if ".tmp-" in p.name]
