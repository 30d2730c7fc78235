"""Stage `labels`: one video's annotation sheet -> data/labels/<video>.csv (frame, time, label)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import params
from pipeline.annotations import frame_labels, read_segments
from pipeline.atomic import atomic_output
from pipeline.video import output_frame_count, probe


def run(annotation: Path, video: Path, out_csv: Path, params_file: Path = params.DEFAULT_PARAMS) -> str:
    p = params.load(params_file)
    fps = float(params.section(p, "data.fps"))
    cfg = params.section(p, "labels")
    n_frames = output_frame_count(probe(video), fps)
    segments = read_segments(annotation, label_map=cfg["map"], classes=cfg["classes"], time_unit=cfg["time_unit"],
                             fps=cfg["annotation_fps"] or fps)
    labels = frame_labels(segments, n_frames=n_frames, fps=fps, default=cfg["default"])
    table = pd.DataFrame({"frame": range(n_frames), "time": [i / fps for i in range(n_frames)], "label": labels})
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    return f"{n_frames} frames labelled"
