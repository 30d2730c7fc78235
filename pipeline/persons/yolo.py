"""Ultralytics YOLO, person class only (AGPL-3.0; see `pipeline.persons.detector`)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.device import resolve_device
from pipeline.core.errors import BouldersegError
from pipeline.core.weights import WeightsFile, load_state
from pipeline.models.ultralytics import RELEASES, quiet_ultralytics, ultralytics_state
from pipeline.persons.detector import Detections

PERSON = 0  # COCO class id

YOLO_WEIGHTS = {  # sha256 of the published COCO checkpoints
    "yolo11n": WeightsFile(f"{RELEASES}/yolo11n.pt", "0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1"),
    "yolo11s": WeightsFile(f"{RELEASES}/yolo11s.pt", "85a76fe86dd8afe384648546b56a7a78580c7cb7b404fc595f97969322d502d5"),
    "yolo11m": WeightsFile(f"{RELEASES}/yolo11m.pt", "d5ffc1a674953a08e11a8d21e022781b1b23a19b730afc309290bd9fb5305b95"),
}


class Yolo:
    """Ultralytics YOLO, person class only; COCO weights from `weights_dir` or untrained from its yaml."""

    def __init__(self, *, model: str, pretrained: bool, weights_dir: str | Path, imgsz: int = 320,
                 conf: float = 0.25, seed: int = 0, device: str = "auto"):
        if pretrained and model not in YOLO_WEIGHTS:
            raise BouldersegError(f"persons.model '{model}' has no pinned weights; pinned: {', '.join(YOLO_WEIGHTS)}.")
        quiet_ultralytics(Path(weights_dir) / "ultralytics")
        from ultralytics import YOLO

        torch.manual_seed(seed)  # an untrained detector's weights
        self.yolo = YOLO(f"{model}.yaml")
        weights: dict[str, Any] = {"pretrained": False}
        if pretrained:
            loaded = load_state(YOLO_WEIGHTS[model], weights_dir, to_state=ultralytics_state)
            self.yolo.model.load_state_dict(loaded.state)
            weights = loaded.provenance
        self.trained = pretrained
        self.device = resolve_device(device)
        self.settings = {"imgsz": imgsz, "conf": conf, "classes": [PERSON], "device": str(self.device),
                         "quantize": 16 if self.device.type == "cuda" else None, "verbose": False}
        self.provenance = {"detector": "yolo", "model": model, "imgsz": imgsz, "conf": conf,
                           "weights": weights}

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        threads = torch.get_num_threads()
        try:
            results = self.yolo.predict(list(images), **self.settings)  # a list of arrays is one batch
        finally:  # ultralytics sets torch to cpu_count - 1 threads; what runs next in this process keeps its own
            torch.set_num_threads(threads)
        return [Detections(r.boxes.xyxy.cpu().numpy().astype(np.float32),
                           r.boxes.conf.cpu().numpy().astype(np.float32)) for r in results]

