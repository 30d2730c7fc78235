"""The person filter: detect persons on every n-th frame -> one parquet row per frame.

`person` says whether the frame passes the filter. The detector runs on every `every`-th frame
and on the last one; a frame in between passes when the detection before it or the one after it
saw a person, so no frame next to a detection of a person is ever dropped. Later stages train and
score only on frames that pass.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.core.atomic import atomic_output
from pipeline.core.prefetch import prefetch
from pipeline.media.probe import frame_paths
from pipeline.persons.detector import Detections, PersonDetector

UNTRAINED_REASON = "detector untrained (weights.pretrained=false): every frame passes"

BOX = pa.list_(pa.float32(), 4)  # x1, y1, x2, y2 in pixels
SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("detected", pa.bool_()),  # the detector ran on this frame
        ("n_persons", pa.int16()),  # persons detected; 0 where the detector did not run
        ("confidence", pa.float32()),  # best person confidence, 0 when none
        ("box", BOX),  # the most confident person; null when none
        ("near_box", BOX),  # the person nearest the one chosen at the previous detection: follows the climber
        ("person", pa.bool_()),  # the frame passes the person filter
        ("reason", pa.string()),
    ]
)


def detection_frames(n_frames: int, every: int) -> np.ndarray:
    """The frames the detector runs on: every `every`-th one and the last."""
    frames = np.arange(0, n_frames, every)
    return frames if frames[-1] == n_frames - 1 else np.append(frames, n_frames - 1)


def carry(n_frames: int, detected: np.ndarray, saw: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) pass decision and reason of every frame from detections at sorted frames `detected`.

    A detected frame passes when its detection saw a person; a frame between two detections passes
    when either of them did.
    """
    frames = np.arange(n_frames)
    after = np.searchsorted(detected, frames, side="left")  # (N,) the detection at or after each frame
    before = np.where(detected[after] == frames, after, after - 1)  # (N,) the one at or before
    person = saw[before] | saw[after]
    reasons = []
    for i in frames:
        b, a = detected[before[i]], detected[after[i]]
        if b == i:
            reasons.append("person detected" if saw[before[i]] else "no person detected")
        elif person[i]:
            reasons.append(f"carried from frame {b if saw[before[i]] else a}")
        else:
            reasons.append(f"no person at frames {b} and {a}")
    return person, reasons


def nearest(boxes: np.ndarray, previous: np.ndarray | None) -> int:
    """Index of the box whose centre is nearest `previous`'s (the most confident first when none)."""
    if previous is None:
        return 0
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return int(np.linalg.norm(centres - (previous[:2] + previous[2:]) / 2, axis=1).argmin())


def _read_batches(paths: list[Path], batch: int) -> Iterator[list[np.ndarray]]:
    for lo in range(0, len(paths), batch):
        yield [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[lo : lo + batch]]


def _detect(detector: PersonDetector, paths: list[Path], batch: int, desc: str) -> list[Detections]:
    out: list[Detections] = []
    with tqdm(total=len(paths), desc=desc, unit="frame", disable=None) as bar:
        for images in prefetch(_read_batches(paths, batch)):
            out += detector.detect(images)
            bar.update(len(images))
    return out


def detect_persons(frames_dir: str | Path, out_parquet: str | Path, *, detector: PersonDetector,
                   every: int = 1, batch: int = 16) -> pa.Table:
    """Run `detector` on every `every`-th frame in batches of `batch`, JPGs decoded on a background thread.

    An untrained detector's boxes are noise, so then every frame passes and `reason` says why.
    """
    paths = frame_paths(frames_dir)
    n = len(paths)
    detected = detection_frames(n, every)
    found = _detect(detector, [paths[i] for i in detected], batch, f"persons {Path(frames_dir).name}")
    counts, best = np.zeros(n, np.int16), np.zeros(n, np.float32)
    boxes: list[list[float] | None] = [None] * n
    near: list[list[float] | None] = [None] * n
    previous = None
    for i, d in zip(detected, found):
        counts[i] = len(d.conf)
        if counts[i]:
            order = np.argsort(-d.conf, kind="stable")  # most confident first
            b = d.boxes[order]
            best[i], boxes[i] = d.conf[order[0]], b[0].tolist()
            previous = b[nearest(b, previous)]
            near[i] = previous.tolist()
    person, reason = carry(n, detected, counts[detected] > 0)
    if not detector.trained:
        person, reason = np.ones(n, bool), [UNTRAINED_REASON] * n
    is_detected = np.zeros(n, bool)
    is_detected[detected] = True
    table = pa.table([[int(p.stem) for p in paths], is_detected, counts, best, boxes, near, person, reason],
                     schema=SCHEMA)
    metadata = detector.provenance | {"every": every}
    table = table.replace_schema_metadata({k: str(v) for k, v in metadata.items()})
    with atomic_output(out_parquet) as tmp:
        pq.write_table(table, tmp)
    return table
