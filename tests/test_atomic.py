from __future__ import annotations

import pytest

from pipeline.atomic import atomic_output


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
