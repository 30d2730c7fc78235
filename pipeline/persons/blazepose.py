"""BlazePose as a person detector: weights shipped in the mediapipe wheel, so it needs no network.

It finds at most one person per image (the one BlazePose's detector scores highest), boxed by the
landmarks that fall inside the image; its confidence is the landmarks' mean visibility.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.models.blazepose import BlazePose
from pipeline.persons.detector import Detections


class BlazePoseDetector:
    trained = True

    def __init__(self, *, conf: float = 0.5):
        self.model = BlazePose(min_confidence=conf)  # a pose counts when its detection scores at or above conf
        self.provenance = {"detector": "blazepose", "model": "pose_landmark_full", "conf": conf,
                           "weights": self.model.weights}

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self._one(bgr) for bgr in images]

    def _one(self, bgr: np.ndarray) -> Detections:
        landmarks = self.model(bgr[..., ::-1])  # (33, 4) or None
        if landmarks is None:
            return Detections.none()
        h, w = bgr.shape[:2]
        xy = landmarks[:, :2].clip(0, 1) * np.array([w, h], np.float32)  # (33, 2) pixels
        box = np.concatenate([xy.min(0), xy.max(0)])[None].astype(np.float32)
        return Detections(box, np.array([landmarks[:, 3].mean()], np.float32))
