"""Sliding windows over a video's frames -> backbone features, with decoding overlapped with compute."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from pipeline import backbones, store
from pipeline.backbones import InputSpec
from pipeline.device import resolve_device
from pipeline.prefetch import prefetch
from pipeline.video import frame_paths


def windows(n_frames: int, *, window: int, stride: int) -> np.ndarray:
    """(n_windows, 2) [start, end) ranges every `stride` frames; the last one ends at the
    last frame, so every frame is covered. A video shorter than `window` is one window."""
    if n_frames <= window:
        return np.array([[0, n_frames]], np.int32)
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return np.array([[s, s + window] for s in starts], np.int32)


def sample_indices(start: int, end: int, num_frames: int) -> np.ndarray:
    """`num_frames` frame indices spread uniformly over [start, end), at segment centres."""
    return start + ((np.arange(num_frames) + 0.5) * (end - start) / num_frames).astype(np.int64)


def load_frame(path: Path, spec: InputSpec) -> np.ndarray:
    """JPG -> short side resized, centre-cropped, normalised (C, H, W) float32."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    scale = spec.short_side / min(h, w)
    bgr = cv2.resize(bgr, (max(spec.crop_size, round(w * scale)), max(spec.crop_size, round(h * scale))),
                     interpolation=cv2.INTER_AREA)
    h, w = bgr.shape[:2]
    y, x = (h - spec.crop_size) // 2, (w - spec.crop_size) // 2
    rgb = bgr[y : y + spec.crop_size, x : x + spec.crop_size, ::-1].astype(np.float32) / 255.0
    rgb = (rgb - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def _clip_batches(paths: list[Path], ranges: np.ndarray, spec: InputSpec, *, batch_size: int,
                  workers: int) -> Iterator[np.ndarray]:
    """Yield (B, C, T, H, W) batches in window order; each frame is decoded once."""
    cache: dict[int, np.ndarray] = {}
    with ThreadPoolExecutor(workers) as pool:
        for lo in range(0, len(ranges), batch_size):
            batch = ranges[lo : lo + batch_size]
            idx = [sample_indices(s, e, spec.num_frames) for s, e in batch]
            missing = sorted(set(np.concatenate(idx).tolist()) - cache.keys())
            cache.update(zip(missing, pool.map(lambda i: load_frame(paths[i], spec), missing)))
            yield np.stack([np.stack([cache[i] for i in ix], axis=1) for ix in idx])
            if lo + batch_size < len(ranges):  # later windows start later: drop what they cannot use
                first = int(ranges[lo + batch_size, 0])
                for i in [i for i in cache if i < first]:
                    del cache[i]


def extract_features(
    frames_dir: str | Path,
    out_zarr: str | Path,
    *,
    # what to run
    backbone: str = "x3d_xs",
    pretrained: bool = True,
    weights_dir: str | Path = "weights",
    seed: int = 0,
    # how to window the frames
    fps: float = 25.0,
    window: int = 16,
    stride: int = 8,
    # how to run it
    batch_size: int = 8,
    device: str = "auto",
    workers: int = 2,
) -> store.FeatureSet:
    """Features of every window of a frames directory, written to a Zarr store.

    Returns the stored set: features (n_windows, D), frame_range (n_windows, 2).
    On CUDA the forward pass runs under bfloat16 autocast; features are stored as float32.
    """
    spec = backbones.get(backbone)
    paths = frame_paths(frames_dir)
    dev = resolve_device(device)
    model, provenance = spec.build(pretrained=pretrained, weights_dir=weights_dir, seed=seed)
    model = model.to(dev)
    ranges = windows(len(paths), window=window, stride=stride)
    out = np.empty((len(ranges), spec.feature_dim), np.float32)
    batches = prefetch(_clip_batches(paths, ranges, spec.input, batch_size=batch_size, workers=workers))
    row = 0
    with torch.inference_mode(), tqdm(total=len(ranges), desc=f"features {Path(frames_dir).name}",
                                      unit="window", disable=None) as bar:
        for clips in batches:
            x = torch.from_numpy(clips)  # (B, C, T, H, W)
            if dev.type == "cuda":
                x = x.pin_memory().to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                y = model(x)  # (B, D)
            out[row : row + len(y)] = y.float().cpu().numpy()
            row += len(y)
            bar.update(len(y))
    attrs = {
        "backbone": backbone,
        "feature_dim": spec.feature_dim,
        "weights": provenance,
        "preprocessing": spec.input.as_dict() | {"sampling": "uniform within window", "resize": "INTER_AREA"},
        "fps": fps,
        "window": window,
        "stride": stride,
        "n_frames": len(paths),
        "device": dev.type,
        "precision": "bfloat16-autocast" if dev.type == "cuda" else "float32",
    }
    store.write(out_zarr, out, ranges, attrs)
    return store.FeatureSet(out, ranges, attrs)
