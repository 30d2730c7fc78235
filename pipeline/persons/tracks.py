"""Detections over time: the climber followed as a track, each track checked against the wall, short misses bridged.

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
ACCEPT_SHARE = 0.25  # of a track's detections that must stand out from the wall
MEDIAN_OF = 255  # thumbnails, evenly spaced, whose median is the background


def linked(last: np.ndarray, box: np.ndarray, seconds: float) -> bool:
    """Whether `box` can be the person of `last`, `seconds` later: centres at most (0.5 + seconds) times the taller
    box's height apart (a climber does not cross more than their height in a second)."""
    height = max(last[3] - last[1], box[3] - box[1])
    return float(np.hypot(*((box[:2] + box[2:]) - (last[:2] + last[2:])) / 2)) <= (0.5 + seconds) * height


@dataclass
class Follower:
    """Chooses, at each detection, the box that continues a live track (the most recently seen first), else the most
    confident box, which starts a new track. A track is live for `max_gap` seconds after its last box, so a false
    detection elsewhere does not end the climber's track."""

    fps: float
    max_gap: float
    seen: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)  # track -> (last frame, last box)

    def _live(self, frame: int) -> list[tuple[int, int, np.ndarray]]:
        """(track, last frame, last box) of the live tracks, the most recently seen first."""
        live = [(t, f, b) for t, (f, b) in self.seen.items() if (frame - f) / self.fps <= self.max_gap]
        return sorted(live, key=lambda x: -x[1])

    def live(self, frame: int) -> np.ndarray | None:
        """The most recently seen live track's last box at `frame`, else None."""
        live = self._live(frame)
        return live[0][2] if live else None

    def step(self, frame: int, boxes: np.ndarray) -> tuple[int | None, int]:
        """(index of the chosen box or None, its track id or -1) among `boxes` (most confident first)."""
        if not len(boxes):
            return None, -1
        chosen, track = 0, len(self.seen)
        for t, f, last in self._live(frame):
            near = [i for i, b in enumerate(boxes) if linked(last, b, (frame - f) / self.fps)]
            if near:
                centre = (last[:2] + last[2:]) / 2
                chosen = min(near, key=lambda i: float(np.linalg.norm((boxes[i, :2] + boxes[i, 2:]) / 2 - centre)))
                track = t
                break
        self.seen[track] = (frame, boxes[chosen].copy())
        return chosen, track


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR -> (h, w) uint8 grey with a short side of THUMB (never upscaled)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    k = min(1.0, THUMB / min(grey.shape))
    return cv2.resize(grey, (round(grey.shape[1] * k), round(grey.shape[0] * k)), interpolation=cv2.INTER_AREA)


def foreground(thumbs: list[np.ndarray], boxes: np.ndarray, image_width: int) -> np.ndarray:
    """(D,) float32: the share of each box's pixels that differ from the background by more than DIFF grey levels,
    each thumbnail first shifted onto the background (phase correlation: a drifting camera); NaN where the box is.

    `boxes` (D, 4) are in pixels of images `image_width` wide; `thumbs` are their thumbnails, one per box."""
    out = np.full(len(thumbs), np.nan, np.float32)
    if not len(thumbs):
        return out
    pick = np.unique(np.linspace(0, len(thumbs) - 1, min(MEDIAN_OF, len(thumbs))).round().astype(int))
    background = np.median(np.stack([thumbs[i] for i in pick]), 0).astype(np.float32)
    scale = thumbs[0].shape[1] / image_width
    for i, (thumb, box) in enumerate(zip(thumbs, boxes)):
        if np.isnan(box).any():
            continue
        grey = thumb.astype(np.float32)
        (dx, dy), _ = cv2.phaseCorrelate(background, grey)
        grey = cv2.warpAffine(grey, np.float32([[1, 0, -dx], [0, 1, -dy]]), grey.shape[::-1],
                              borderMode=cv2.BORDER_REPLICATE)
        x1, y1, x2, y2 = np.clip(np.round(box * scale).astype(int), 0, [grey.shape[1], grey.shape[0]] * 2)
        patch = np.abs(grey[y1:y2 + 1, x1:x2 + 1] - background[y1:y2 + 1, x1:x2 + 1])
        out[i] = float((patch > DIFF).mean()) if patch.size else 0.0
    return out


def decide(frames: np.ndarray, tracks: np.ndarray, fg: np.ndarray, *, fps: float, max_gap: float,
           min_foreground: float | None, whole: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """At the sorted detection frames `frames` (D,): whether each saw the climber, and (D,) bool whether that was
    bridged (a miss between two detections of one accepted track at most `max_gap` seconds apart).

    A track (`tracks` (D,), -1: nobody) is accepted when the detector saw it in the whole frame (`whole` (D,) bool)
    or at least a quarter of its detections have a foreground share `fg` of `min_foreground` or more (None: every
    track). Tiles are where a busy wall's holds look like a person, and what a whole-frame detector sees can be a
    person who stands still for most of the video (and so is part of the median); a long track on the wall is not
    accepted for the few boxes where a drifting camera made the wall differ from its median."""
    whole = np.zeros(len(frames), bool) if whole is None else whole
    accepted = {t for t in np.unique(tracks[tracks >= 0])
                if min_foreground is None or whole[tracks == t].any()
                or np.mean(np.nan_to_num(fg[tracks == t]) >= min_foreground) >= ACCEPT_SHARE}
    saw = np.array([t in accepted for t in tracks.tolist()], bool)
    bridged = np.zeros(len(frames), bool)
    for t in accepted:
        at = np.flatnonzero(tracks == t)
        for a, b in zip(at[:-1], at[1:]):
            if b > a + 1 and (frames[b] - frames[a]) / fps <= max_gap:
                bridged[a + 1:b] = ~saw[a + 1:b]
    return saw | bridged, bridged
