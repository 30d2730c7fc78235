"""Ultralytics YOLO person detection on extracted frames -> one parquet row per frame."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.atomic import atomic_output
from pipeline.video import frame_paths
from pipeline.weights import fetch

PERSON = 0  # COCO class id
WEIGHTS_URL = "https://github.com/ultralytics/assets/releases/download/v8.3.0/{model}.pt"
UNTRAINED_REASON = "detector untrained (weights.pretrained=false): every frame kept"

SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("n_persons", pa.int16()),
        ("confidence", pa.float32()),  # best person confidence, 0 when none
        ("box", pa.list_(pa.float32(), 4)),  # best person box x1, y1, x2, y2 in pixels; null when none
        ("keep", pa.bool_()),
        ("reason", pa.string()),
    ]
)


def _quiet_ultralytics(config_dir: Path) -> None:
    """No network probes, no settings in $HOME, no font download."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))


def load_detector(*, model: str, pretrained: bool, weights_dir: str | Path):  # -> ultralytics.YOLO
    """YOLO `model` (e.g. yolo11n) with COCO weights from `weights_dir`, or untrained from its yaml."""
    weights_dir = Path(weights_dir)
    _quiet_ultralytics(weights_dir / "ultralytics")
    source = fetch(WEIGHTS_URL.format(model=model), weights_dir) if pretrained else None
    from ultralytics import YOLO

    return YOLO(str(source) if source else f"{model}.yaml")


def detect_persons(
    frames_dir: str | Path,
    out_parquet: str | Path,
    *,
    model: str = "yolo11n",
    pretrained: bool = True,
    weights_dir: str | Path = "weights",
    seed: int = 0,
    imgsz: int = 320,
    conf: float = 0.25,
    batch: int = 16,
    device: str = "auto",
) -> pa.Table:
    """Detect persons in every frame; `keep` is whether the frame shows one.

    An untrained detector's boxes are noise, so then every frame is kept and `reason` says why.
    """
    import torch

    paths = frame_paths(frames_dir)
    torch.manual_seed(seed)  # an untrained detector's weights
    detector = load_detector(model=model, pretrained=pretrained, weights_dir=weights_dir)
    device_arg = None if device == "auto" else device
    n = np.zeros(len(paths), np.int16)
    best = np.zeros(len(paths), np.float32)
    boxes: list[list[float] | None] = [None] * len(paths)
    with tqdm(total=len(paths), desc=f"persons {Path(frames_dir).name}", unit="frame", disable=None) as bar:
        for lo in range(0, len(paths), batch):
            chunk = [str(p) for p in paths[lo : lo + batch]]
            results = detector.predict(chunk, imgsz=imgsz, conf=conf, classes=[PERSON],
                                       device=device_arg, verbose=False)
            for i, r in enumerate(results, start=lo):
                n[i] = len(r.boxes)
                if n[i]:
                    j = int(r.boxes.conf.argmax())
                    best[i] = float(r.boxes.conf[j])
                    boxes[i] = [float(v) for v in r.boxes.xyxy[j]]
            bar.update(len(chunk))
    keep = n > 0 if pretrained else np.ones(len(paths), bool)
    reason = [
        UNTRAINED_REASON if not pretrained else ("person detected" if k else "no person detected")
        for k in keep
    ]
    frames = [int(p.stem) for p in paths]
    table = pa.table([frames, n, best, boxes, keep, reason], schema=SCHEMA)
    table = table.replace_schema_metadata(
        {"model": model, "pretrained": str(pretrained), "imgsz": str(imgsz), "conf": str(conf)}
    )
    with atomic_output(out_parquet) as tmp:
        pq.write_table(table, tmp)
    return table
