"""Where a detector looks in one frame: around the climber's last box, then the whole frame, then tiles.

Whole-frame detectors miss a climber who is a few hundred pixels of a wide view of a busy wall (BlazePose's
detector is a selfie and fitness model). The same detector finds them in a crop where they fill more of its input:
a square around the box the track last had, else overlapping tiles of the frame. The first place that finds a
person wins, so a frame costs one detector call while the climber is followed.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.persons.detector import Detections, PersonDetector

AROUND = 2.0  # the crop around the last box: this many times its longer side
AROUND_MIN = 0.3  # ... and at least this share of the frame's short side


@dataclass(frozen=True)
class Found:
    """A frame's persons in its own pixels, and which look found them: track | frame | tile2 | tile3 … | '' (nobody)."""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2, most confident first
    conf: np.ndarray  # (n,) float32
    by: str

    @classmethod
    def of(cls, d: Detections, by: str) -> Found:
        order = np.argsort(-d.conf, kind="stable")
        return cls(d.boxes[order], d.conf[order], by if len(order) else "")


def tiles(height: int, width: int, grid: int) -> Iterator[tuple[int, int, int, int]]:
    """(x, y, w, h) of a grid x grid of overlapping tiles, each 1.5 / grid of the frame's sides (2: 3/4, 3: 1/2)."""
    th, tw = min(height, round(height * 1.5 / grid)), min(width, round(width * 1.5 / grid))
    for i in range(grid):
        for j in range(grid):
            yield (round(j * (width - tw) / max(grid - 1, 1)), round(i * (height - th) / max(grid - 1, 1)), tw, th)


def around(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the square crop centred on `box`, inside the frame."""
    side = max(box[2] - box[0], box[3] - box[1]) * AROUND
    side = int(min(max(side, AROUND_MIN * min(height, width)), min(height, width)))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x = int(np.clip(cx - side / 2, 0, width - side))
    y = int(np.clip(cy - side / 2, 0, height - side))
    return x, y, side, side


def _in_frame(found: list[Detections], rects: list[tuple[int, int, int, int]]) -> Detections:
    """The crops' detections moved into frame pixels, overlapping duplicates (tiles overlap) merged."""
    boxes = [d.boxes + np.array([x, y, x, y], np.float32) for d, (x, y, _, _) in zip(found, rects)]
    d = Detections(np.concatenate(boxes).astype(np.float32), np.concatenate([d.conf for d in found]))
    return suppress(d)


def suppress(d: Detections, iou: float = 0.5) -> Detections:
    """Greedy non-maximum suppression: a box overlapping a more confident one by more than `iou` is dropped."""
    order, keep = np.argsort(-d.conf, kind="stable"), []
    for i in order:
        if all(_iou(d.boxes[i], d.boxes[k]) <= iou for k in keep):
            keep.append(i)
    return Detections(d.boxes[keep], d.conf[keep])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def look(detector: PersonDetector, image: np.ndarray, *, last: np.ndarray | None, grids: tuple[int, ...]) -> Found:
    """Persons in one (H, W, 3) BGR frame: around `last` (the track's box, if any), else the whole frame, else the
    tiles of each grid in turn (each grid one detector batch); the first that finds someone wins."""
    h, w = image.shape[:2]
    if last is not None:
        x, y, cw, ch = around(last, h, w)
        d = detector.detect([image[y:y + ch, x:x + cw]])[0]
        if len(d.conf):
            return Found.of(_in_frame([d], [(x, y, cw, ch)]), "track")
    d = detector.detect([image])[0]
    if len(d.conf) or not grids:
        return Found.of(d, "frame")
    for grid in grids:
        rects = list(tiles(h, w, grid))
        found = detector.detect([image[y:y + th, x:x + tw] for x, y, tw, th in rects])
        if any(len(f.conf) for f in found):
            return Found.of(_in_frame(found, rects), f"tile{grid}")
    return Found.of(Detections.none(), "")
