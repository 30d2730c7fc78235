"""Stage `labels`: one video's annotation rows -> data/labels/<video>.csv (frame, time, label)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import params
from pipeline.annotations import LabelPolicy
from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError, warn
from pipeline.videos import entries, label_video


def run(key: str, out_csv: Path, params_file: Path = params.DEFAULT_PARAMS) -> str:
    p = params.load(params_file)
    fps = float(params.section(p, "data.fps"))
    policy = LabelPolicy.from_params(params.section(p, "labels"), fps=fps)
    videos = entries(params.section(p, "videos"))
    if key not in videos:
        raise BouldersegError(f"{params_file}: no video '{key}' under videos; known: {', '.join(videos)}.")
    result = label_video(videos[key], policy, fps=fps)
    for message in result.warnings:
        warn(message)
    n = len(result.labels)
    table = pd.DataFrame({"frame": range(n), "time": [i / fps for i in range(n)], "label": result.labels})
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    return f"{n} frames labelled from {len(result.segments)} segments of {result.where}"
