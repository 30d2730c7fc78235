"""features.crop climber on real climbing footage: what cutting each window around the climber costs and gives.

    python benchmarks/crop.py CLIP.mp4 [CLIP.mp4 ...] [--params params.yaml] [--runs 3] [--sheets DIR] [--out DIR]

Per clip, the frames are written as the frames stage writes them and the persons stage runs as stages/persons.py
does (params.yaml's data, frames and persons sections: the committed default profile), then:
  (a) the choice features.crop made: decoding the source at features.crop_short_side (720) in every features stage,
      against keeping a 720-short-side JPG copy of every frame: ms per frame of pipeline.media.source.read_frames at
      720 and of cv2.imread of the JPGs extract_frames(short_side=720) writes, and kB per frame of the frames stage's
      JPGs (frames.short_side, 256) and of the 720 ones
  (b) extract_features of efficientnet_lite0 (the weights pip ships) on the CPU with features.crop none and
      climber, each the median of --runs runs after one untimed warm-up of each (params.yaml's features section,
      pooling and batch; a run builds its model, as a stage does)
  (c) the climber's share of the crop and of the whole frame at each window's centre frame (the track box there,
      `pipeline.views.crops.window_facts`), medians over the windows cut around a box; and the windows that saw no
      climber (fed the whole frame)
--sheets DIR: each clip's contact sheet of crops (`boulderseg inspect crops`' drawing) as DIR/<clip>-crops.png.
Nothing is written outside --out (default: a temporary folder) and --sheets.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import zarr

from pipeline.core import params
from pipeline.features.crop import Crop, track_boxes
from pipeline.features.extract import extract_features
from pipeline.media.frames import extract_frames
from pipeline.media.probe import frame_paths, probe
from pipeline.media.source import read_frames
from pipeline.persons import registry
from pipeline.persons.filter import Search, detect_persons
from pipeline.views.crops import crop_sheet, sample, summarise, window_facts

BACKBONE, FAMILY = "efficientnet_lite0", "efficientnet"


def prepare(clip: Path, work: Path, p: params.Params) -> tuple[Path, Path]:
    """The clip's frames and persons parquet, as the frames and persons stages write them."""
    frames, persons = work / "frames", work / "persons.parquet"
    extract_frames(clip, frames, fps=p.data.fps, short_side=p.frames.short_side, jpg_quality=p.frames.jpg_quality)
    detector = registry.build(p.persons, pretrained=p.weights.pretrained, weights_dir=p.runtime.weights_dir,
                              seed=p.weights.seed, device="cpu")
    detect_persons(frames, persons, detector=detector, every=p.persons.every, batch=p.runtime.persons_batch,
                   search=Search.of(p.persons), fps=p.data.fps)
    return frames, persons


def decode_or_copy(clip: Path, frames: Path, work: Path, p: params.Params) -> dict:
    """(a): ms per frame decoding the source at crop_short_side vs reading a JPG copy at it; kB per frame of each."""
    side = p.features.crop_short_side
    copy = work / f"frames{side}"
    extract_frames(clip, copy, fps=p.data.fps, short_side=side, jpg_quality=p.frames.jpg_quality)
    paths, stored = frame_paths(copy), frame_paths(frames)
    t = time.perf_counter()
    n = sum(1 for _ in read_frames(probe(clip), np.arange(len(paths)), fps=p.data.fps, short_side=side))
    decode = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for path in paths:
        cv2.imread(str(path))
    imread = (time.perf_counter() - t) / len(paths)
    return {"frames": len(paths), "decode_ms": 1000 * decode, "imread_ms": 1000 * imread,
            "kb_stored": sum(f.stat().st_size for f in stored) / len(stored) / 1e3,
            "kb_copy": sum(f.stat().st_size for f in paths) / len(paths) / 1e3}


def extract(frames: Path, persons: Path, out: Path, p: params.Params, rule: str) -> float:
    """Seconds extract_features takes to write `out` from scratch, with features.crop `rule`."""
    f = p.features
    shutil.rmtree(out, ignore_errors=True)  # else the store is reused
    t = time.perf_counter()
    extract_features(frames, out, backbone=BACKBONE, family=FAMILY, persons=persons, pretrained=True,
                     weights_dir=p.runtime.weights_dir, pooling=f.pooling(BACKBONE, FAMILY), clip=f.clip,
                     crop=Crop(**(f.crop_settings() | {"rule": rule})), fps=p.data.fps, window=f.window,
                     stride=f.stride, dtype=f.dtype, batch_size=p.runtime.features_batch, device="cpu",
                     workers=p.runtime.features_workers)
    return time.perf_counter() - t


def extract_times(frames: Path, persons: Path, work: Path, p: params.Params, runs: int) -> dict[str, float]:
    """(b): rule -> median seconds of `runs` runs, after one untimed run of each rule."""
    times: dict[str, list[float]] = {"none": [], "climber": []}
    for rule in times:
        extract(frames, persons, work / f"{rule}.zarr", p, rule)
    for _ in range(runs):
        for rule in times:
            times[rule].append(extract(frames, persons, work / f"{rule}.zarr", p, rule))
    return {rule: statistics.median(t) for rule, t in times.items()}


def shares(frames: Path, persons: Path, store: Path) -> list[dict]:
    """(c): `window_facts` of the climber store at `store`."""
    group = zarr.open_group(str(store), mode="r")
    manifest = json.loads((frames / "manifest.json").read_text())
    return window_facts(group["crop_boxes"][:], group["clip_frames"][:], track_boxes(persons, manifest["frames"]),
                        (manifest["height"], manifest["width"]), manifest["fps"])


def median_of(facts: list[dict], key: str) -> str:
    values = [f[key] for f in facts if f[key] is not None]
    return f"{100 * statistics.median(values):.0f} %" if values else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--params", type=Path, default=params.DEFAULT_PARAMS)
    ap.add_argument("--runs", type=int, default=3, help="timed extract_features runs per crop rule")
    ap.add_argument("--sheets", type=Path, help="write each clip's contact sheet of crops here")
    ap.add_argument("--out", type=Path, help="keep the work here (default: a temporary folder)")
    args = ap.parse_args()
    p = params.load(args.params)
    side = p.features.crop_short_side
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            work = (args.out or Path(tmp)) / clip.stem
            frames, persons = prepare(clip, work, p)
            a = decode_or_copy(clip, frames, work, p)
            b = extract_times(frames, persons, work, p, args.runs)
            facts = shares(frames, persons, work / "climber.zarr")
            if args.sheets:
                out = args.sheets / f"{clip.stem}-crops.png"
                crop_sheet(frames, [facts[w] for w in sample(len(facts), None)], out)
            s = summarise(facts)
            rows.append(f"| {clip.stem} | {a['frames']} | {a['decode_ms']:.1f} | {a['imread_ms']:.1f} | "
                        f"{a['kb_stored']:.0f} | {a['kb_copy']:.0f} | {b['none']:.2f} | {b['climber']:.2f} | "
                        f"{b['climber'] / b['none']:.2f} | {s['windows']} | {median_of(facts, 'share')} | "
                        f"{median_of(facts, 'frame_share')} | {s['whole_frame']} |")
            print(f"{clip.stem} done", flush=True)
    print(f"\n(a) decode at {side} vs a {side} JPG copy; (b) {BACKBONE} extract_features, median of {args.runs} "
          "runs, CPU; (c) the climber's share at each window's centre frame, median\n")
    print(f"| clip | frames | (a) decode {side} ms/frame | (a) imread {side} JPG ms/frame | "
          f"(a) kB/frame {p.frames.short_side} | (a) kB/frame {side} | (b) s crop none | (b) s crop climber | "
          "(b) climber / none | windows | (c) share of crop | (c) share of frame | whole-frame windows |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
