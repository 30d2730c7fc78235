"""Sliding windows over a video's frames, and the clip of frames each window feeds a backbone."""
from __future__ import annotations

import numpy as np

from pipeline.features.backbones import Clip


def windows(n_frames: int, *, window: int, stride: int) -> np.ndarray:
    """(n_windows, 2) [start, end) ranges every `stride` frames; the last one ends at the
    last frame, so every frame is covered. A video shorter than `window` is one window."""
    if n_frames <= window:
        return np.array([[0, n_frames]], np.int32)
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return np.array([[s, s + window] for s in starts], np.int32)


def clip_frames(ranges: np.ndarray, clip: Clip, *, n_frames: int, fps: float) -> tuple[np.ndarray, int]:
    """(W, clip.frames) frame indices each window feeds, and how many of them repeat the last frame.

    The clip is `clip.frames` frames `clip.step(fps)` apart, centred on the window's centre and shifted to stay
    inside the video, so it may reach past its window (context, computed per video before any fold exists).
    No frame is fed twice, except in a video shorter than the clip, which repeats its last frame."""
    step = clip.step(fps)
    span = (clip.frames - 1) * step + 1
    centre = (ranges[:, 0] + ranges[:, 1] - 1) / 2  # (W,)
    start = np.clip(np.floor(centre - (span - 1) / 2 + 0.5).astype(np.int64), 0, max(n_frames - span, 0))
    index = start[:, None] + step * np.arange(clip.frames)[None]  # (W, T)
    return np.minimum(index, n_frames - 1), int((index > n_frames - 1).sum())
