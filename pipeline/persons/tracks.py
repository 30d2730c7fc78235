"""Detections over time: the climber followed as a track, each box checked against the wall, short misses bridged.

A climber moves continuously, so a box found at one detection bounds where to look at the next, and a short miss
between two detections of one track is a detector's miss, not an empty frame. A detector that sees a person in the
holds of a busy wall sees it where the wall is: such a track never differs from the video's background (the
per-pixel median of its frames, aligned for camera drift), while a climber does, somewhere along their track.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

THUMB = 160  # short side of the grey thumbnails the background is estimated from
DIFF = 25  # grey levels: a pixel this far from the background is foreground
MIN_BOXES = 2  # a track found only in tiles needs this many boxes: one box is no track
LOCAL = 2.0  # seconds: a box is judged with its track's boxes this close in time
MEDIAN_OF = 255  # thumbnails, evenly spaced, whose median is the background


def linked(last: np.ndarray, box: np.ndarray, seconds: float) -> bool:
    """Whether `box` can be the person of `last`, `seconds` later: centres at most (0.5 + seconds) times the taller
    box's height apart (a climber does not cross more than their height in a second)."""
    height = max(last[3] - last[1], box[3] - box[1])
    return float(np.hypot(*((box[:2] + box[2:]) - (last[:2] + last[2:])) / 2)) <= (0.5 + seconds) * height


@dataclass
class Follower:
    """Links each detection's boxes to live tracks: each live track (the most recently seen first) takes the nearest
    box it can be (`linked`); a box no track takes starts a track of its own. A track is live for `max_gap` seconds
    after its last box, so one false detection elsewhere does not end the climber's track."""

    fps: float
    max_gap: float
    seen: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)  # live track -> (last frame, last box)
    boxes: dict[int, int] = field(default_factory=dict)  # track -> boxes so far
    tracks: int = 0  # tracks started

    def _live(self, frame: int) -> list[tuple[int, int, np.ndarray]]:
        """(track, last frame, last box) of the tracks live at `frame`: the most recently seen first, then the
        longest (so the climber's track is not crowded out by holds seen in the same frame). Others are forgotten."""
        self.seen = {t: v for t, v in self.seen.items() if (frame - v[0]) / self.fps <= self.max_gap}
        return sorted(((t, f, b) for t, (f, b) in self.seen.items()), key=lambda x: (-x[1], -self.boxes[x[0]]))

    def live(self, frame: int, most: int = 2) -> list[np.ndarray]:
        """The last boxes of at most `most` tracks live at `frame`, in `_live`'s order."""
        return [b for _, _, b in self._live(frame)[:most]]

    def assign(self, frame: int, boxes: np.ndarray) -> np.ndarray:
        """(n,) int32 the track of each of `boxes` at `frame`."""
        tracks = np.full(len(boxes), -1, np.int32)
        for t, f, last in self._live(frame):
            free = [i for i in range(len(boxes)) if tracks[i] < 0 and linked(last, boxes[i], (frame - f) / self.fps)]
            if free:
                centre = (last[:2] + last[2:]) / 2
                tracks[min(free, key=lambda i: float(np.linalg.norm((boxes[i, :2] + boxes[i, 2:]) / 2 - centre)))] = t
        for i in np.flatnonzero(tracks < 0):
            tracks[i], self.tracks = self.tracks, self.tracks + 1
        for i, t in enumerate(tracks.tolist()):
            self.seen[t] = (frame, boxes[i].copy())
            self.boxes[t] = self.boxes.get(t, 0) + 1
        return tracks


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR -> (h, w) uint8 grey with a short side of THUMB (never upscaled)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    k = min(1.0, THUMB / min(grey.shape))
    return cv2.resize(grey, (round(grey.shape[1] * k), round(grey.shape[0] * k)), interpolation=cv2.INTER_AREA)


def foreground(thumbs: list[np.ndarray], frame_of: np.ndarray, boxes: np.ndarray, image_width: int) -> np.ndarray:
    """(B,) float32: the share of each box's pixels that differ from the background by more than DIFF grey levels,
    the background first shifted onto its frame's thumbnail (phase correlation: a drifting camera), so the box is
    compared where it is.

    `thumbs` are the detection frames' grey thumbnails; box b (`boxes` (B, 4), pixels of images `image_width`
    wide) is in frame `frame_of[b]`."""
    out = np.zeros(len(boxes), np.float32)
    if not len(boxes):
        return out
    pick = np.unique(np.linspace(0, len(thumbs) - 1, min(MEDIAN_OF, len(thumbs))).round().astype(int))
    background = np.median(np.stack([thumbs[i] for i in pick]), 0).astype(np.float32)
    scale = thumbs[0].shape[1] / image_width
    differ: dict[int, np.ndarray] = {}
    for b, (k, box) in enumerate(zip(frame_of.tolist(), boxes)):
        if k not in differ:
            grey = thumbs[k].astype(np.float32)
            (dx, dy), _ = cv2.phaseCorrelate(background, grey)  # grey(x) ~ background(x - (dx, dy))
            moved = cv2.warpAffine(background, np.float32([[1, 0, dx], [0, 1, dy]]), grey.shape[::-1],
                                   borderMode=cv2.BORDER_REPLICATE)
            differ[k] = np.abs(grey - moved)
        x1, y1, x2, y2 = np.clip(np.round(box * scale).astype(int), 0, [background.shape[1], background.shape[0]] * 2)
        patch = differ[k][y1:y2 + 1, x1:x2 + 1]
        out[b] = float((patch > DIFF).mean()) if patch.size else 0.0
    return out


def judged(tracks: np.ndarray, frames: np.ndarray, fg: np.ndarray, whole: np.ndarray, min_foreground: float | None,
           *, fps: float, min_boxes: int = MIN_BOXES) -> tuple[np.ndarray, np.ndarray]:
    """Per box: whether it is a person, and how much it stands out ((B,) bool, (B,) float32), from its track
    `tracks` (B,), its frame `frames` (B,), its foreground share `fg` (B,) and whether a whole-frame look found it
    `whole` (B,). Each box is judged with its track's boxes within LOCAL seconds of it: a person when a whole-frame
    look saw one of them, or when the track has `min_boxes` boxes and their median foreground share reaches
    `min_foreground` (None: every box); how much it stands out is that median.

    Tiles are where a busy wall's holds look like a person; what the whole-frame look sees can be a person who
    stands still for most of the video (and so is part of the median); and judging boxes by their neighbourhood
    rather than the whole track means a climber whose track once took over a hold's (they passed by it) is not
    judged by the hold's minutes of boxes, nor a hold by the climber's."""
    ok, local = np.ones(len(tracks), bool), np.nan_to_num(fg.astype(np.float32))
    if min_foreground is None:
        return ok, local
    order = np.lexsort((frames, tracks))
    starts = np.flatnonzero(np.r_[True, np.diff(tracks[order]) != 0])  # each track's boxes, in time
    for group in np.split(order, starts[1:]) if len(order) else []:
        at = frames[group]
        lo = np.searchsorted(at, at - LOCAL * fps, side="left")
        hi = np.searchsorted(at, at + LOCAL * fps, side="right")
        for i, a, b in zip(group, lo, hi):
            near = group[a:b]
            local[i] = np.median(np.nan_to_num(fg[near]))
            ok[i] = whole[near].any() or (len(group) >= min_boxes and local[i] >= min_foreground)
    return ok, local


def bridge(frames: np.ndarray, track_at: np.ndarray, *, fps: float, max_gap: float) -> np.ndarray:
    """(D,) bool: the detection frames (sorted `frames` (D,)) inside a gap of at most `max_gap` seconds between two
    detections of one track, where `track_at` (D,) is the accepted track each detection saw (-1: none)."""
    bridged = np.zeros(len(frames), bool)
    for t in np.unique(track_at[track_at >= 0]):
        at = np.flatnonzero(track_at == t)
        for a, b in zip(at[:-1], at[1:]):
            if b > a + 1 and (frames[b] - frames[a]) / fps <= max_gap:
                bridged[a + 1:b] = track_at[a + 1:b] < 0
    return bridged
