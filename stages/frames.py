"""Stage `frames`: one video -> data/frames/<video>/000000.jpg … at the pipeline fps."""
from __future__ import annotations

from pathlib import Path

from pipeline import params
from pipeline.video import extract_frames


def run(video: Path, out_dir: Path, params_file: Path = params.DEFAULT_PARAMS) -> str:
    p = params.load(params_file)
    cfg = params.section(p, "frames")
    n = extract_frames(video, out_dir, fps=float(params.section(p, "data.fps")), height=cfg["height"],
                     jpg_quality=cfg["jpg_quality"], workers=cfg["workers"])
    return f"{n} frames"
