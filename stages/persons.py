"""Stage `persons`: one video's frames -> data/persons/<video>.parquet (YOLO person detections)."""
from __future__ import annotations

from pathlib import Path

from pipeline import params
from pipeline.persons import detect_persons


def run(frames_dir: Path, out_parquet: Path, params_file: Path = params.DEFAULT_PARAMS) -> str:
    p = params.load(params_file)
    cfg, weights = params.section(p, "persons"), params.section(p, "weights")
    table = detect_persons(frames_dir, out_parquet, model=cfg["model"], imgsz=cfg["imgsz"], conf=cfg["conf"],
                           batch=cfg["batch"], device=cfg["device"], pretrained=weights["pretrained"],
                           weights_dir=weights["dir"], seed=weights["seed"])
    return f"{sum(table['keep'].to_pylist())} of {table.num_rows} frames kept"
