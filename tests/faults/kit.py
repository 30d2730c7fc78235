"""What the fault tests share: a command's failure is one message, and nothing is left behind."""
from __future__ import annotations

import subprocess
from pathlib import Path


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes): to compare a tree before and after a failure."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def failed_with(r: subprocess.CompletedProcess, *words: str, code: int = 1) -> str:
    """`r` exited `code` with one `error:` message holding every one of `words`, and no traceback."""
    assert r.returncode == code, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    message = r.stderr[r.stderr.index("error:"):]
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def no_temp_left(root: Path) -> None:
    assert not [p for p in root.rglob(".*.tmp-*")], "a temp output was left behind"
