"""Write-then-rename, so that a crash, a Ctrl-C or a SIGKILL never leaves a half-written output behind.

A write that fails because the disk is full or the folder is read-only ends in one message naming
the output, and the free space it needed, instead of a traceback from whichever library was writing.
Temp outputs are named `.NAME.tmp-PID…` (the project's .dvcignore hides them from DVC's hashes).
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.errors import BouldersegError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
AT_FDCWD, RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc >= 2.28


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    if _is_dir(path):
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _temp_name(dst: Path, tag: str = "") -> Path:
    return dst.with_name(f".{dst.name}.tmp-{os.getpid()}{tag}")


def _writer_alive(temp: Path) -> bool:
    """Whether another process that is still running owns `temp` (its pid is in the name)."""
    pid = re.match(r"\d+", temp.name.rpartition(".tmp-")[2])
    if pid is None or int(pid.group()) == os.getpid():
        return False
    try:
        os.kill(int(pid.group()), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap `a` and `b` in one step (renameat2 RENAME_EXCHANGE); False where the kernel or file system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _install(tmp: Path, dst: Path) -> None:
    """Put `tmp` at `dst`. A file replaces a file in one rename. Where a directory is involved, the new one swaps
    with the old in one step, and the old one is removed from its temp name last: a kill at any instant leaves `dst`
    wholly old or wholly new, and a temp that `clean_stale` removes. Without renameat2 (not Linux, or a file system
    that cannot exchange) the old one is renamed aside first: between the two renames `dst` is absent, never partial."""
    if not (_is_dir(tmp) or _is_dir(dst)) or not (dst.exists() or dst.is_symlink()):
        os.replace(tmp, dst)  # a file over a file, or into an empty place: one atomic rename
        return
    old = tmp
    if not _exchange(tmp, dst):
        old = _temp_name(dst, ".old")
        os.replace(dst, old)
        os.replace(tmp, dst)
    _remove(old)


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
    """Remove the temp leftovers of `dst` that writers which died left; a running writer's temp is its own."""
    for stale in dst.parent.glob(f".{dst.name}.tmp-*"):
        if not _writer_alive(stale):
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
        _install(tmp, dst)
    except OSError as e:
        _remove(tmp)
        raise explain(e, dst) from None
