"""Write-then-rename, so that a crash or Ctrl-C never leaves a half-written output behind."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _temp_name(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.tmp-{os.getpid()}")


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
    dst.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dst)
    tmp = _temp_name(dst)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    _remove(dst)
    os.replace(tmp, dst)
