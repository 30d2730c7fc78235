"""Climber-centred clips (`features.crop: climber`): each window's clip cut around the persons stage's track.

On gym footage the climber is a few hundred pixels of a frame full of holds, so a backbone fed the whole frame
mostly describes the wall. Each window gets one square box: the union of the track's boxes over the frames its clip
feeds, enlarged by `margin` (a share of its longer side, on each side), clamped to the frame; the same box for every
frame of the clip, so the motion inside the window is kept. A window whose frames have no box is fed the whole frame.
The pixels are cut from the source decoded at `short_side` (never upscaled), not from the stored JPGs: a climber a
few hundred pixels tall in the source is a few dozen in a 256-row JPG (decoding costs less time than a
high-resolution copy of every frame costs disk: benchmarks/crop.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import BouldersegError


@dataclass(frozen=True)
class Crop:
    """How each window's clip is cut: the features section's crop keys."""

    rule: str = "none"  # none: the whole frame | climber: around the persons stage's track
    margin: float = 1.0  # share of the union box's longer side added on each side
    short_side: int | None = 720  # decode the source at this short side to cut from (never upscaled); None: as coded

    def __post_init__(self) -> None:
        if self.rule not in ("none", "climber"):
            raise BouldersegError(f"features.crop: {self.rule!r} is not a crop rule (none | climber).")

    @property
    def climber(self) -> bool:
        return self.rule == "climber"

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "margin": self.margin, "short_side": self.short_side}


def person_boxes(persons: str | Path, n_frames: int) -> np.ndarray:
    """(n_frames, 4) float32 (x0, y0, x1, y1) in stored-frame pixels: the persons parquet's tracked person (`near_box`,
    set on detection frames), interpolated between two detections that saw it, held where only one did, NaN else."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(persons, columns=["detected", "near_box"])
    except (OSError, KeyError, ValueError) as e:
        raise BouldersegError(f"{persons}: no persons table with near_box ({e}). Run the persons stage first.") from e
    if table.num_rows != n_frames:
        raise BouldersegError(f"{persons}: {table.num_rows} rows, the frames are {n_frames}. Rerun the persons stage.")
    detected = np.flatnonzero(table["detected"].to_numpy(zero_copy_only=False))
    near = table["near_box"].to_pylist()
    known = np.array([near[i] or [np.nan] * 4 for i in detected], np.float32).reshape(-1, 4)  # (D, 4)
    frames = np.arange(n_frames)
    after = np.minimum(np.searchsorted(detected, frames), len(detected) - 1)  # the detection at or after each frame
    before = np.where(detected[after] <= frames, after, np.maximum(after - 1, 0))
    w = ((frames - detected[before]) / np.maximum(detected[after] - detected[before], 1))[:, None].astype(np.float32)
    a, b = known[before], known[after]
    return np.where(np.isnan(a), b, np.where(np.isnan(b), a, (1 - w) * a + w * b))


def track_boxes(persons: str | Path, n_frames: int) -> np.ndarray:
    """(n_frames, 4) float32 (x0, y0, x1, y1) in stored-frame pixels: the climber's track (`near_box`, `track`) at
    each frame: interpolated between two detections of one track, the nearer one's box next to a detection of the
    track that has no detection of it on the other side, NaN where no detection near it saw the climber."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(persons, columns=["detected", "near_box", "track"])
    except (OSError, KeyError, ValueError) as e:
        raise BouldersegError(f"{persons}: no climber track in it ({str(e).splitlines()[0]}): features.crop climber cuts each clip around "
                              "the persons stage's track. Rerun the persons stage (`dvc repro`), or set "
                              "features.crop to none.") from e
    if table.num_rows != n_frames:
        raise BouldersegError(f"{persons}: {table.num_rows} rows, the frames are {n_frames}. Rerun the persons stage.")
    detected = np.flatnonzero(table["detected"].to_numpy(zero_copy_only=False))
    near, track = table["near_box"].to_pylist(), table["track"].to_numpy(zero_copy_only=False)
    out = np.full((n_frames, 4), np.nan, np.float32)
    for a, b in zip(detected, [*detected[1:], None]):
        box_a = None if near[a] is None else np.array(near[a], np.float32)
        box_b = None if b is None or near[b] is None else np.array(near[b], np.float32)
        end = n_frames if b is None else b
        if box_a is not None and box_b is not None and track[a] == track[b]:
            w = (np.arange(a, end) - a)[:, None] / (b - a)
            out[a:end] = (1 - w) * box_a + w * box_b
        else:  # each side's box holds up to the middle of the gap (the person filter's `carried` frames)
            middle = end if b is None else a + (end - a + 1) // 2
            if box_a is not None:
                out[a:middle] = box_a
            if box_b is not None:
                out[middle:end] = box_b
    return out


def window_boxes(boxes: np.ndarray, index: np.ndarray, size: tuple[int, int], *, margin: float) -> np.ndarray:
    """(n_frames, 4) per-frame boxes and the (W, T) frames each window feeds -> (W, 4) float32 crop boxes
    (x0, y0, x1, y1) in pixels of (rows, columns) `size` frames: the square around the union of the window's boxes,
    its side the union's longer side times (1 + 2 `margin`), at most the frame's short side, shifted inside the frame;
    the whole frame for a window none of whose frames has a box."""
    rows, cols = size
    out = np.tile(np.array([0, 0, cols, rows], np.float32), (len(index), 1))
    for w, frames in enumerate(index):
        seen = boxes[frames]
        seen = seen[~np.isnan(seen).any(1)]
        if not len(seen):
            continue
        x0, y0 = seen[:, 0].min(), seen[:, 1].min()
        x1, y1 = seen[:, 2].max(), seen[:, 3].max()
        side = min(max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * margin), rows, cols)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = float(np.clip(cx - side / 2, 0, cols - side))
        top = float(np.clip(cy - side / 2, 0, rows - side))
        out[w] = (left, top, left + side, top + side)
    return out


def source_box(box: np.ndarray, scale: tuple[float, float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A crop box in stored-frame pixels -> (y0, y1, x0, x1) integer slice bounds in a decoded frame of (rows,
    columns) `shape` that is `scale` (columns, rows) times the stored frame, at least one pixel a side."""
    x0, x1 = (round(float(v) * scale[0]) for v in box[[0, 2]])
    y0, y1 = (round(float(v) * scale[1]) for v in box[[1, 3]])
    x0, y0 = min(max(x0, 0), shape[1] - 1), min(max(y0, 0), shape[0] - 1)
    return y0, max(min(y1, shape[0]), y0 + 1), x0, max(min(x1, shape[1]), x0 + 1)


def crop_frames(frames_dir: str | Path, index: np.ndarray, *, short_side: int | None,
                size: tuple[int, int]) -> tuple[Iterator[tuple[int, np.ndarray]], tuple[float, float], dict[str, list]]:
    """The source frames the (W, T) clip `index` feeds, decoded once in order at `short_side` (never upscaled), as
    (frame index, (H, W, 3) uint8 BGR); the (columns, rows) scale from stored-frame pixels to theirs; and what was
    decoded, for the store's record."""
    from pipeline.media.probe import probe
    from pipeline.media.source import read_frames, scaled_size, video_of

    video = video_of(frames_dir)
    if not video.is_file():
        raise BouldersegError(f"{video}: not found, and features.crop climber cuts the climber from the source video "
                              f"{Path(frames_dir)}'s frames were written from. Restore it (`dvc pull`), or set "
                              "features.crop to none.")
    info = probe(video)
    width, height = scaled_size(info, short_side)
    scale = (width / size[1], height / size[0])
    frames = read_frames(info, np.unique(index), fps=_fps(frames_dir), short_side=short_side)
    return frames, scale, {"source_size": [width, height]}


def _fps(frames_dir: str | Path) -> float:
    import json

    return float(json.loads((Path(frames_dir) / "manifest.json").read_text())["fps"])


def cut_batches(frames: Iterator[tuple[int, np.ndarray]], index: np.ndarray, crops: np.ndarray,
                scale: tuple[float, float], prepare: Callable[[np.ndarray], object], *,
                batch_size: int) -> Iterator[list[list]]:
    """Yield, per batch of `batch_size` windows in order, each window's clip as a list of `prepare(cut image)` per
    frame: every frame of the (W, T) clip `index` cut to its window's crop box (`crops`, stored-frame pixels). The
    decoded frames are kept only while a later window can still feed them."""
    cache: dict[int, np.ndarray] = {}
    latest = -1
    for lo in range(0, len(index), batch_size):
        batch = index[lo : lo + batch_size]
        while latest < batch.max():
            latest, image = next(frames)
            cache[latest] = image
        out = []
        for w, frame_ids in enumerate(batch, start=lo):
            clip = []
            for i in frame_ids:
                y0, y1, x0, x1 = source_box(crops[w], scale, cache[i].shape[:2])
                clip.append(prepare(cache[i][y0:y1, x0:x1]))
            out.append(clip)
        yield out
        if lo + batch_size < len(index):
            first = int(index[lo + batch_size :].min())
            for i in [i for i in cache if i < first]:
                del cache[i]
