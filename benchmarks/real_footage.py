"""The person filter on real climbing footage: the share of frames kept, what found them, and its cost, against
the filter as main had it before 2026-12-05 ("before": BlazePose on the whole JPG, 256 rows high whatever the
orientation, conf 0.5, every 5th frame, carry).

    python benchmarks/real_footage.py CLIP.mp4 [CLIP.mp4 ...] [--walls] [--minutes 5] [--params params.yaml]

Each clip must show a person in every frame (the footage of ../shared/footage does; its README says so), so the
share kept is the filter's recall. Frames are written as the frames stage writes them (params.yaml's data.fps and
frames; before: 256 rows), then `detect_persons` runs with the persons section of --params ("now") and with the
old settings ("before"). ms per frame is `detect_persons`' wall time (source decoding included) over the video's
frames at data.fps.

--smaller K: each clip shrunk K times into the middle of its own empty wall (the median, at full size): the
climber K times smaller in a frame of the same size (a wider view of the wall).

--walls: the false-positive side. From each clip, the per-pixel median of its frames over time (the wall without
the climber, who moves; a clip filmed by a moving hand leaves a ghost of them, shown in --out) drifted slowly (40
pixels of 720 over the clip) with sensor noise (sigma 3 grey levels), as long as the clip: the share kept should be
near 0. --minutes M: the clip looped to M minutes (the persons stage's cost on a long video). Nothing is written
outside --out (default: a temporary folder).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.core import params
from pipeline.media.frames import extract_frames
from pipeline.media.probe import output_frame_count, probe
from pipeline.media.source import read_frames
from pipeline.persons import registry
from pipeline.persons.filter import Search, detect_persons

BEFORE = params.Persons(detector="blazepose", conf=0.5, every=5)


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """(H, W, 3) BGR frames -> an H.264 MP4 at `fps`."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "20", "preset": "veryfast"}
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode())
    return path


def upright(clip: Path, fps: float, short_side: int = 720) -> list[np.ndarray]:
    info = probe(clip)
    n = output_frame_count(info, fps)
    return [image for _, image in read_frames(info, np.arange(n), fps=fps, short_side=short_side)]


def empty_wall(clip: Path, out: Path, fps: float, seed: int = 0) -> Path:
    frames = upright(clip, fps)
    wall = np.median(np.stack(frames[:: max(1, len(frames) // 60)]), 0).astype(np.float32)
    cv2.imwrite(str(out.with_suffix(".median.jpg")), wall.astype(np.uint8))
    rng, n, scale = np.random.default_rng(seed), len(frames), min(wall.shape[:2]) / 720
    drifted = []
    for k in range(n):
        m = np.float32([[1, 0, 40 * scale * k / n], [0, 1, 12 * scale * np.sin(3 * k / n)]])
        image = cv2.warpAffine(wall, m, wall.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
        drifted.append(np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8))
    return write_video(out, drifted, fps)


def smaller(clip: Path, out: Path, fps: float, factor: float) -> Path:
    """The clip shrunk by `factor` into the middle of its own empty wall (the median, at full size): the same
    frame size, the climber `factor` times smaller."""
    frames = upright(clip, fps)
    wall = np.median(np.stack(frames[:: max(1, len(frames) // 60)]), 0).astype(np.uint8)
    h, w = wall.shape[:2]
    sh, sw = round(h / factor), round(w / factor)
    y, x = (h - sh) // 2, (w - sw) // 2
    shrunk = []
    for image in frames:
        canvas = wall.copy()
        canvas[y:y + sh, x:x + sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        shrunk.append(canvas)
    return write_video(out, shrunk, fps)


def looped(clip: Path, out: Path, fps: float, minutes: float) -> Path:
    frames = upright(clip, fps)
    n = int(minutes * 60 * fps)
    return write_video(out, [frames[i % len(frames)] for i in range(n)], fps)


def main_short_side(video: Path, rows: int = 256) -> int:
    """The short side main's frames had: frames.height counted rows, so a portrait clip's short side was smaller."""
    w, h = probe(video).display_size
    return min(rows, h) if h <= w else round(min(rows, h) * w / h)


def run(video: Path, work: Path, p: params.Params, persons: params.Persons, short_side: int) -> dict:
    frames_dir = work / f"frames{short_side}"
    if not frames_dir.exists():
        extract_frames(video, frames_dir, fps=p.data.fps, short_side=short_side, jpg_quality=p.frames.jpg_quality)
    detector = registry.build(persons, pretrained=p.weights.pretrained, weights_dir=p.runtime.weights_dir)
    t = time.perf_counter()
    table = detect_persons(frames_dir, work / f"persons-{id(persons)}.parquet", detector=detector,
                           every=persons.every, search=Search.of(persons), fps=p.data.fps)
    seconds = time.perf_counter() - t
    kept = table.filter(table["person"])["found_by"].to_pylist()
    return {"kept": len(kept) / table.num_rows, "n": table.num_rows, "seconds": seconds,
            "ms": 1000 * seconds / table.num_rows, "by": {b: kept.count(b) / len(kept) for b in sorted(set(kept))}}


def line(name: str, before: dict, now: dict) -> str:
    by = ", ".join(f"{b} {s:.0%}" for b, s in sorted(now["by"].items(), key=lambda x: -x[1]))
    return (f"| {name} | {before['n']} | {before['kept']:.0%} | **{now['kept']:.0%}** | {by} | {before['ms']:.1f} | "
            f"{now['ms']:.1f} | {before['seconds']:.1f} | {now['seconds']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--walls", action="store_true", help="also the empty walls made from each clip")
    ap.add_argument("--minutes", type=float, help="also each clip looped to this many minutes")
    ap.add_argument("--smaller", type=float, help="also each clip shrunk by this factor into its own empty wall")
    ap.add_argument("--params", type=Path, default=params.DEFAULT_PARAMS)
    ap.add_argument("--out", type=Path, help="keep the work here (default: a temporary folder)")
    args = ap.parse_args()
    p = params.load(args.params)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        print("| clip | frames | kept before | kept now | found by (now) | ms/frame before | ms/frame now | "
              "s before | s now |")
        print("|---|---|---|---|---|---|---|---|---|")
        for clip in args.clips:
            videos = {clip.stem: clip}
            if args.walls:
                (root / "walls").mkdir(parents=True, exist_ok=True)
                videos[f"{clip.stem} empty wall"] = empty_wall(clip, root / "walls" / f"{clip.stem}.mp4", p.data.fps)
            if args.smaller:
                (root / "smaller").mkdir(parents=True, exist_ok=True)
                videos[f"{clip.stem} 1/{args.smaller:g} size"] = smaller(clip, root / "smaller" / f"{clip.stem}.mp4",
                                                                       p.data.fps, args.smaller)
            if args.minutes:
                (root / "long").mkdir(parents=True, exist_ok=True)
                videos[f"{clip.stem} x {args.minutes:g} min"] = looped(clip, root / "long" / f"{clip.stem}.mp4",
                                                                    p.data.fps, args.minutes)
            for name, video in videos.items():
                work = root / name.replace(" ", "_")
                before = run(video, work, p, BEFORE, main_short_side(video))
                now = run(video, work, p, p.persons, p.frames.short_side)
                print(line(name, before, now), flush=True)


if __name__ == "__main__":
    main()
