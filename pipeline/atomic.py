"""Write-then-rename, so that a crash or Ctrl-C never leaves a half-written output behind.

A write that fails because the disk is full or the folder is read-only ends in one message naming
the output, and the free space it needed, instead of a traceback from whichever library was writing.
"""
from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import BouldersegError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _temp_name(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.tmp-{os.getpid()}")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def explain(e: BaseException, dst: Path, written: int = 0) -> BaseException:
    """A disk-full or not-writable error as one BouldersegError naming `dst`; anything else unchanged.
    Called once the temp output is removed, so the free space it names is what the output had to fill.

    Libraries report a full disk in their own words (pyarrow, zarr), so the message is read as well as errno.
    """
    code = getattr(e, "errno", None)
    text = str(e)
    if code in DISK_FULL or "No space left on device" in text or "Disk quota exceeded" in text:
        folder = next((p for p in (dst.parent, *dst.parents) if p.exists()), Path("."))
        free = shutil.disk_usage(folder).free
        return BouldersegError(
            f"{dst}: no space left on the device: it needs more than the {_mib(free)} free on the file system of "
            f"{folder} ({_mib(written)} were written when it filled up). Free space there, or write the output "
            "elsewhere, then rerun; nothing partial was kept.")
    if code in NOT_WRITABLE or "Read-only file system" in text:
        where = getattr(e, "filename", None) or dst
        return BouldersegError(f"{dst}: cannot write there ({os.strerror(code) if code else text}: {where}). "
                               "Make the folder writable, or write the output elsewhere; nothing partial was kept.")
    return e


def clean_stale(dst: Path) -> None:
    """Remove temp leftovers of `dst` from earlier runs that crashed."""
    for stale in dst.parent.glob(f".{dst.name}.tmp-*"):
        _remove(stale)


@contextmanager
def atomic_output(dst: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `dst`; on success it replaces `dst`, on any error it is removed.

    With `directory=True` the temp path is created as an empty directory.
    """
    dst = Path(dst)
    tmp = _temp_name(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(dst)
        if directory:
            tmp.mkdir()
    except OSError as e:
        raise explain(e, dst) from None
    try:
        yield tmp
    except BaseException as e:
        written = _size(tmp)
        _remove(tmp)
        error = explain(e, dst, written)
        if error is not e:
            raise error from None
        raise
    try:
        _remove(dst)
        os.replace(tmp, dst)
    except OSError as e:
        _remove(tmp)
        raise explain(e, dst) from None
