"""Person detectors: one interface; `persons.detector` picks one (`pipeline.persons.registry.build`).

- `yolo`: ultralytics YOLO11 (COCO weights from a download; AGPL-3.0). The default.
- `blazepose`: MediaPipe BlazePose, weights shipped in the mediapipe wheel (Apache-2.0): real
  detections with no network.
- `hog`: OpenCV's HOG people detector (built into opencv-contrib): a weak fallback with no weights file.

ultralytics is AGPL-3.0: whoever distributes boulderseg together with it (or serves it over a
network) must offer the complete source under the AGPL. A detector with another licence only has
to implement `PersonDetector`; `pipeline.persons.filter` needs nothing else.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2 in pixels of the input image
    conf: np.ndarray  # (n,) float32 confidence of each box being a person

    @classmethod
    def none(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


class PersonDetector(Protocol):
    provenance: dict[str, Any]  # model, weights and settings, recorded beside the results
    trained: bool  # false: an untrained network, whose boxes are noise

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Persons in each BGR (H, W, 3) uint8 image, run as one batch."""
