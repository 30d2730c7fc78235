"""A persons stage's parquet written directly, for tests of what reads it (the flow backbone's person boxes)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.persons.filter import SCHEMA


def persons_parquet(path: Path, boxes: dict[int, list[float] | None], n_frames: int) -> Path:
    """`n_frames` rows; the detector ran on the frames `boxes` names, seeing the person at that box (None: nobody)."""
    near = [boxes.get(i) for i in range(n_frames)]
    table = pa.table([list(range(n_frames)), [i in boxes for i in range(n_frames)],
                      [int(b is not None) for b in near], [float(b is not None) for b in near], near, near,
                      [True] * n_frames, ["test"] * n_frames, ["frame" if b else "" for b in near],
                      [0 if b else -1 for b in near], [None] * n_frames], schema=SCHEMA)
    pq.write_table(table, path)
    return path
