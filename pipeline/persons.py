"""The person filter: detect persons in every frame -> one parquet row per frame.

`person` says whether the frame passes the filter (a person was detected in it); later stages
train and score only on such frames.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.atomic import atomic_output
from pipeline.detectors import PersonDetector
from pipeline.prefetch import prefetch
from pipeline.video import frame_paths

UNTRAINED_REASON = "detector untrained (weights.pretrained=false): every frame passes"

SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("n_persons", pa.int16()),
        ("confidence", pa.float32()),  # best person confidence, 0 when none
        ("box", pa.list_(pa.float32(), 4)),  # best person box x1, y1, x2, y2 in pixels; null when none
        ("person", pa.bool_()),  # the frame passes the person filter
        ("reason", pa.string()),
    ]
)


def _read_batches(paths: list[Path], batch: int) -> Iterator[list[np.ndarray]]:
    for lo in range(0, len(paths), batch):
        yield [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[lo : lo + batch]]


def detect_persons(frames_dir: str | Path, out_parquet: str | Path, *, detector: PersonDetector,
                   trained: bool = True, batch: int = 16) -> pa.Table:
    """Run `detector` on every frame in batches of `batch`, JPGs decoded on a background thread.

    An untrained detector's boxes are noise, so then every frame passes and `reason` says why.
    """
    paths = frame_paths(frames_dir)
    n = np.zeros(len(paths), np.int16)
    best = np.zeros(len(paths), np.float32)
    boxes: list[list[float] | None] = [None] * len(paths)
    i = 0
    with tqdm(total=len(paths), desc=f"persons {Path(frames_dir).name}", unit="frame", disable=None) as bar:
        for images in prefetch(_read_batches(paths, batch)):
            for d in detector.detect(images):
                n[i] = len(d.conf)
                if n[i]:
                    j = int(d.conf.argmax())
                    best[i], boxes[i] = d.conf[j], d.boxes[j].tolist()
                i += 1
            bar.update(len(images))
    person = n > 0 if trained else np.ones(len(paths), bool)
    reason = [UNTRAINED_REASON if not trained else ("person detected" if k else "no person detected")
              for k in person]
    table = pa.table([[int(p.stem) for p in paths], n, best, boxes, person, reason], schema=SCHEMA)
    table = table.replace_schema_metadata({k: str(v) for k, v in detector.provenance.items()})
    with atomic_output(out_parquet) as tmp:
        pq.write_table(table, tmp)
    return table
