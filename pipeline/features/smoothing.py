"""Pose landmark tracks smoothed over a video's fed frames (`features.pose_smoothing`), before they become features.

A pose backbone's per-frame vector is (2, points, channels): the box-relative block, then the absolute one (x, y in
[0, 1] across the fed frame; BlazePose adds z), visibility last; a frame with nobody is all zeros. Smoothing works on
the absolute positions in pixels of the fed frame, one track per landmark and coordinate, in frame order:

  bridging   a landmark is visible when its visibility is at least VISIBLE in a frame with a person; the others are
             filled by linear interpolation in time from its visible neighbours (held at the ends), never kept. A run
             of frames with nobody lasting at most MAX_GAP_S is bridged the same way; a longer one stays "no person"
             (zeros) and splits the video: no track is smoothed across it. Visibility is kept as detected.
  one_euro   Casiez et al. 2012, per sample with its own time step: MIN_CUTOFF Hz when still, the cutoff rising by
             BETA Hz per pixel/s of speed (derivative low-passed at D_CUTOFF Hz). At the fed 12.5 frames/s (blazepose:
             every 2nd frame at 25 fps) a still landmark is low-passed at 1 Hz, one moving 100 px/s at 2 Hz (beta 0.03
             let BlazePose's one-frame jumps through: 41 % less jitter on the sample, against 66 % with 0.01).
  savgol     scipy's Savitzky-Golay filter, order SAVGOL_ORDER over the odd number of fed frames nearest SAVGOL_S
             seconds (7 at 12.5 frames/s, 13 at 25): lines and parabolas pass unchanged. It assumes evenly spaced fed
             frames, as the clips of overlapping windows are (but near a video's end).

Box-relative positions are then recomputed from the smoothed absolute ones: over the landmarks' own span (BlazePose),
or over the detector's box (YOLO), recovered per frame from the two blocks and tracked like two more landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.core.errors import BouldersegError

METHODS = ("none", "one_euro", "savgol")
VISIBLE = 0.5  # visibility (BlazePose) or confidence (YOLO) from which a landmark counts as seen
MAX_GAP_S = 1.0  # runs of frames with nobody up to this long are bridged; longer ones stay "no person"
MIN_CUTOFF, BETA, D_CUTOFF = 1.0, 0.01, 1.0  # One-Euro: Hz, Hz per (px/s), Hz (benchmarks/pose_jitter.py)
SAVGOL_S, SAVGOL_ORDER = 0.5, 2


@dataclass(frozen=True)
class Landmarks:
    """A pose backbone's per-frame layout: (2, points, channels), box-relative block then absolute, visibility last."""

    points: int
    channels: int  # x, y, [z,] visibility
    box: Literal["span", "detection"]  # the relative block's box: the landmarks' own span, or the detector's box

    def smooth(self, frames: np.ndarray, vectors: np.ndarray, *, method: str, fps: float,
               size: tuple[int, int]) -> np.ndarray:
        """(N, 2 * points * channels) per-frame vectors of the fed `frames` (N,) in increasing order -> the same with
        every track bridged and smoothed by `method` ("none": returned unchanged); `size`: the fed frames' (rows, cols)."""
        if method not in METHODS:
            raise BouldersegError(f"unknown pose smoothing '{method}': features.pose_smoothing in params.yaml takes "
                                  f"{', '.join(METHODS)}.")
        if method == "none":
            return vectors
        n, k = len(vectors), self.channels - 1  # k: the coordinates (x, y, [z])
        v = vectors.reshape(n, 2, self.points, self.channels).astype(np.float64)
        person = np.abs(vectors).sum(1) > 0
        scale = np.array([size[1], size[0], size[1]][:k], np.float64)  # z is in x's scale
        pos, seen = v[:, 1, :, :k] * scale, (v[:, 1, :, -1] >= VISIBLE) & person[:, None]  # (n, P, k), (n, P)
        if self.box == "detection":
            corners, found = _detector_box(v, scale[:2])  # (n, 2, 2), (n,)
            pos = np.concatenate([pos, np.pad(corners, ((0, 0), (0, 0), (0, k - 2)))], 1)
            seen = np.concatenate([seen, np.repeat((found & person)[:, None], 2, 1)], 1)
        t, out, keep = np.asarray(frames, np.float64) / fps, np.zeros_like(v), np.zeros(n, bool)
        for a, b in present_runs(t, person):
            track = bridge(t[a:b], pos[a:b], seen[a:b], person[a:b])
            pos[a:b] = one_euro(t[a:b], track) if method == "one_euro" else savgol(t[a:b], track)
            keep[a:b] = True
        out[:, :, :, -1] = v[:, 1, None, :, -1]  # visibility as detected, in both blocks
        xy = pos[:, : self.points, :2]
        out[:, 1, :, :k] = pos[:, : self.points] / scale
        if self.box == "span":
            lo, hi = xy.min(1, keepdims=True) / scale[:2], xy.max(1, keepdims=True) / scale[:2]
            out[:, 0, :, :2] = (xy / scale[:2] - lo) / np.maximum(hi - lo, 1e-3)
        else:
            lo, hi = pos[:, self.points, None, :2], pos[:, self.points + 1, None, :2]
            out[:, 0, :, :2] = (xy - lo) / np.maximum(hi - lo, 1)
        if k == 3:
            out[:, 0, :, 2] = out[:, 1, :, 2]
        out[~keep] = 0
        return out.reshape(n, -1).astype(vectors.dtype)


def present_runs(t: np.ndarray, person: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) sample ranges treated as one person's presence: runs with a person, joined (or extended at the ends)
    over runs without one lasting at most MAX_GAP_S (their samples times the median step of `t` (N,) seconds)."""
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    keep = person.copy()
    edges = np.flatnonzero(np.diff(np.r_[1, person.astype(np.int8), 1]))  # starts/ends of the no-person runs
    for a, b in zip(edges[::2], edges[1::2]):
        if (b - a) * step <= MAX_GAP_S + 1e-9 and person.any():
            keep[a:b] = True
    bounds = np.flatnonzero(np.diff(np.r_[0, keep.astype(np.int8), 0]))
    return list(zip(bounds[::2].tolist(), bounds[1::2].tolist()))


def bridge(t: np.ndarray, pos: np.ndarray, seen: np.ndarray, person: np.ndarray) -> np.ndarray:
    """(N, P, k) positions at times `t` (N,) -> the same with each landmark's unseen samples ((N, P) `seen` False)
    linearly interpolated from its seen ones, held at the ends; a landmark never seen is interpolated from the
    samples with a person ((N,) `person`: the detector's guess there), so no bridged sample keeps a no-person zero."""
    out = pos.copy()
    for p in range(pos.shape[1]):
        basis = seen[:, p] if seen[:, p].any() else person
        if basis.any() and not basis.all():
            for c in range(pos.shape[2]):
                out[:, p, c] = np.interp(t, t[basis], pos[basis, p, c])
    return out


def one_euro(t: np.ndarray, x: np.ndarray, *, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
             d_cutoff: float = D_CUTOFF) -> np.ndarray:
    """One-Euro filter of (N, ...) samples at times `t` (N,) seconds, every trailing element its own track."""
    def alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        return 1 / (1 + 1 / (2 * np.pi * cutoff * dt))

    y, dx = np.empty_like(x), np.zeros_like(x[0])
    y[0] = x[0]
    for i in range(1, len(x)):
        dt = max(t[i] - t[i - 1], 1e-6)
        dx = dx + alpha(d_cutoff, dt) * ((x[i] - y[i - 1]) / dt - dx)
        y[i] = y[i - 1] + alpha(min_cutoff + beta * np.abs(dx), dt) * (x[i] - y[i - 1])
    return y


def savgol(t: np.ndarray, x: np.ndarray, *, seconds: float = SAVGOL_S, order: int = SAVGOL_ORDER) -> np.ndarray:
    """Savitzky-Golay filter of (N, ...) samples at times `t` (N,) along axis 0, over the odd number of samples nearest
    `seconds` (at most N; fewer than order + 2 samples are returned as they are)."""
    from scipy.signal import savgol_filter

    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    window = min(2 * int(round(seconds / step / 2)) + 1, len(x) - (1 - len(x) % 2))
    return savgol_filter(x, window, order, axis=0) if window > order + 1 else x.copy()


def jitter(vectors: np.ndarray, layout: Landmarks, size: tuple[int, int], *, seen_in: np.ndarray | None = None) -> float:
    """Mean squared second difference (pixels^2) of the absolute x, y of landmarks visible in three consecutive fed
    frames: (N, D) per-frame vectors, visibility read from `seen_in` (the unsmoothed vectors; default `vectors`)."""
    v = vectors.reshape(len(vectors), 2, layout.points, layout.channels)
    ref = v if seen_in is None else seen_in.reshape(v.shape)
    seen = ref[:, 1, :, -1] >= VISIBLE  # (N, P)
    xy = v[:, 1, :, :2].astype(np.float64) * np.array([size[1], size[0]])
    d2 = ((xy[2:] - 2 * xy[1:-1] + xy[:-2]) ** 2).sum(-1)  # (N - 2, P)
    both = seen[2:] & seen[1:-1] & seen[:-2]
    return float(d2[both].mean()) if both.any() else float("nan")


def _detector_box(v: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2, P, C) vectors -> each frame's detector box corners (N, 2, 2) in pixels, recovered from
    absolute = corner + size * relative over the landmarks (least squares per axis), and whether it was (N,)."""
    rel, absolute = v[:, 0, :, :2], v[:, 1, :, :2] * scale  # (N, P, 2)
    dr, da = rel - rel.mean(1, keepdims=True), absolute - absolute.mean(1, keepdims=True)
    var = (dr**2).sum(1)  # (N, 2)
    size = (dr * da).sum(1) / np.maximum(var, 1e-12)
    lo = absolute.mean(1) - size * rel.mean(1)
    return np.stack([lo, lo + size], 1), (var > 1e-6).all(1)
