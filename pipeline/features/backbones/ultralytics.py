"""Ultralytics YOLO pose: the most confident person's 17 COCO keypoints in every frame.

Per frame, 102 numbers: (x, y, confidence) of each keypoint relative to the person's box (x, y in
[0, 1] across it), then the same in absolute image coordinates (x, y in [0, 1] across the frame),
the position the paper names as its missing improvement. No person: zeros. ultralytics is AGPL-3.0.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from pipeline.core.weights import Checkpoint, WeightsFile
from pipeline.features.backbones import Backbone, InputSpec, each_frame, image, register
from pipeline.features.smoothing import Landmarks
from pipeline.models.ultralytics import RELEASES, quiet_ultralytics, ultralytics_state

KEYPOINTS = 17


class Keypoints(nn.Module):
    """A YOLO pose network on every frame: (B, C, T, H, W) RGB in [0, 1] -> (B, T, 2 * 17 * 3)."""

    def __init__(self, model: nn.Module, conf: float = 0.25):
        super().__init__()
        self.model, self.conf = model, conf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ultralytics.utils.nms import non_max_suppression

        b, t, (h, w) = x.shape[0], x.shape[2], x.shape[-2:]
        raw = self.model(each_frame(x))  # (B * T, 4 + 1 + 51, anchors), with extras in eval mode
        found = non_max_suppression(raw[0] if isinstance(raw, (tuple, list)) else raw, self.conf, 0.7, nc=1,
                                    max_time_img=10.0)
        out = x.new_zeros(b * t, 2, KEYPOINTS, 3)
        for i, d in enumerate(found):  # (n, 6 + 51): box, confidence, class, keypoints
            if len(d):
                best = d[d[:, 4].argmax()]
                box, kpt = best[:4], best[6:].view(KEYPOINTS, 3)
                out[i, 0, :, :2] = (kpt[:, :2] - box[:2]) / (box[2:] - box[:2]).clamp(min=1)
                out[i, 1, :, :2] = kpt[:, :2] / x.new_tensor([w, h])
                out[i, :, :, 2] = kpt[:, 2]
        return out.view(b, t, -1)


def _pose() -> nn.Module:
    quiet_ultralytics(Path(tempfile.gettempdir()) / "boulderseg-ultralytics")  # its settings file, no network
    from ultralytics import YOLO

    return Keypoints(YOLO("yolo11n-pose.yaml").model)


register(Backbone(
    name="yolo_pose", family="ultralytics", level="frame", dim=2 * KEYPOINTS * 3, make=_pose, n_params=2908507,
    input=InputSpec(image(), short_side=320, crop_size=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), paper_frames=8),
    # not pinned yet: ultralytics saves pickled modules, so this file is refused until its sha256 is pinned here
    weights=Checkpoint(WeightsFile(f"{RELEASES}/yolo11n-pose.pt", sha256=None),
                       lambda ckpt: {f"model.{k}": v for k, v in ultralytics_state(ckpt).items()}),
    landmarks=Landmarks(KEYPOINTS, 3, box="detection"),
))
