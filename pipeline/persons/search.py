"""Where a detector looks in one frame: around the climber's last box, then the whole frame, then tiles.

Whole-frame detectors miss a climber who is a few hundred pixels of a wide view of a busy wall (BlazePose's
detector is a selfie and fitness model). The same detector finds them in a crop where they fill more of its input:
a square around the box each live track last had, else overlapping tiles of the frame. While the climber is
followed a frame costs one detector call; the whole frame and the tiles are still looked at regularly (`scan`),
so a track that follows something else (a hold that looks like a person) never hides the climber.
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
    """A frame's persons in its own pixels, and which look found each: track | frame | tile2 | tile3 …"""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2, most confident first
    conf: np.ndarray  # (n,) float32
    by: tuple[str, ...]  # (n,)

    @classmethod
    def of(cls, d: Detections, by: str | tuple[str, ...]) -> Found:
        order = np.argsort(-d.conf, kind="stable")
        tags = (by,) * len(d.conf) if isinstance(by, str) else by
        return cls(d.boxes[order], d.conf[order], tuple(tags[i] for i in order))


def tiles(height: int, width: int, grid: int) -> Iterator[tuple[int, int, int, int]]:
    """(x, y, w, h) of a grid x grid of overlapping tiles, each 1.5 / grid of the frame's sides (2: 3/4, 3: 1/2)."""
    th, tw = min(height, round(height * 1.5 / grid)), min(width, round(width * 1.5 / grid))
    for i in range(grid):
        for j in range(grid):
            yield (round(j * (width - tw) / max(grid - 1, 1)), round(i * (height - th) / max(grid - 1, 1)), tw, th)


def around_box(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the square crop centred on `box`, inside the frame."""
    side = max(box[2] - box[0], box[3] - box[1]) * AROUND
    side = int(min(max(side, AROUND_MIN * min(height, width)), min(height, width)))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x = int(np.clip(cx - side / 2, 0, width - side))
    y = int(np.clip(cy - side / 2, 0, height - side))
    return x, y, side, side


def _in_frame(found: list[Detections], rects: list[tuple[int, int, int, int]]) -> Detections:
    """The crops' detections moved into frame pixels."""
    boxes = [d.boxes + np.array([x, y, x, y], np.float32) for d, (x, y, _, _) in zip(found, rects)]
    return Detections(np.concatenate(boxes).astype(np.float32), np.concatenate([d.conf for d in found]))


def suppress(found: Found, iou: float = 0.5) -> Found:
    """Greedy non-maximum suppression (overlapping tiles and crops see one person twice): a box overlapping a more
    confident one by more than `iou` is dropped."""
    keep: list[int] = []
    for i in range(len(found.conf)):  # most confident first
        if all(_iou(found.boxes[i], found.boxes[k]) <= iou for k in keep):
            keep.append(i)
    return Found(found.boxes[keep], found.conf[keep], tuple(found.by[i] for i in keep))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def merge(parts: list[Found]) -> Found:
    """Several looks' persons in one frame, duplicates suppressed."""
    parts = [f for f in parts if len(f.conf)]
    if not parts:
        return Found.of(Detections.none(), "")
    d = Detections(np.concatenate([f.boxes for f in parts]), np.concatenate([f.conf for f in parts]))
    return suppress(Found.of(d, sum((f.by for f in parts), ())))


def look(detector: PersonDetector, image: np.ndarray, *, around: list[np.ndarray], grids: tuple[int, ...],
         scan: bool) -> Found:
    """Persons in one (H, W, 3) BGR frame: in a crop around each box of `around` (the live tracks' last boxes); then,
    when those found nobody or `scan` says to look anyway, in the whole frame; then in the tiles of each grid in turn
    (each grid one detector batch) while nobody is found, or all of them on a scan: a detector that sees one person
    per image (BlazePose) would otherwise never see a small climber beside a judge in full view, nor beside holds
    it takes for a person."""
    h, w = image.shape[:2]
    found = []
    for box in around:
        x, y, cw, ch = around_box(box, h, w)
        d = detector.detect([image[y:y + ch, x:x + cw]])[0]
        if len(d.conf):
            found.append(Found.of(_in_frame([d], [(x, y, cw, ch)]), "track"))
    if found and not scan:
        return merge(found)
    d = detector.detect([image])[0]
    if len(d.conf):
        found.append(Found.of(d, "frame"))
    for grid in grids:
        if found and not scan:
            break
        rects = list(tiles(h, w, grid))
        in_tiles = detector.detect([image[y:y + th, x:x + tw] for x, y, tw, th in rects])
        if any(len(f.conf) for f in in_tiles):
            found.append(Found.of(_in_frame(in_tiles, rects), f"tile{grid}"))
    return merge(found)
