"""BlazePose landmarks in every frame, weights shipped in the mediapipe wheel: pose features with no network.

Per frame, 264 numbers: (x, y, z, visibility) of each of the 33 landmarks relative to the person's
box (x, y in [0, 1] across the box spanned by the landmarks), then the same with x, y in absolute
image coordinates ([0, 1] across the frame), the position the paper names as its missing
improvement. z is BlazePose's depth (hip-centred, the scale of x). No person: zeros.
It runs TFLite on the CPU whatever `runtime.device` says. There is no random-init variant: the
shipped weights are used even with `weights.pretrained: false`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.features.backbones import Backbone, InputSpec, image, register
from pipeline.features.smoothing import Landmarks
from pipeline.models.blazepose import LANDMARKS, WEIGHTS, BlazePose


class PoseFrames(nn.Module):
    """BlazePose on every frame: (B, C, T, H, W) RGB in [0, 1] -> (B, T, 2 * 33 * 4). Nothing to train."""

    def __init__(self):
        super().__init__()
        self.model: BlazePose | None = None  # built on first use: the TFLite graph cannot be copied or moved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.model is None:
            self.model = BlazePose()
        b, t = x.shape[0], x.shape[2]
        images = (x.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 4, 1).cpu().numpy()
        out = np.zeros((b * t, 2, LANDMARKS, 4), np.float32)
        for i, rgb in enumerate(images.reshape(b * t, *images.shape[2:])):  # (H, W, 3) each
            landmarks = self.model(rgb)
            if landmarks is None:
                continue
            xy = landmarks[:, :2]
            lo, hi = xy.min(0), xy.max(0)
            out[i, 0, :, :2] = (xy - lo) / np.maximum(hi - lo, 1e-3)
            out[i, 1, :, :2] = xy
            out[i, :, :, 2:] = landmarks[:, 2:]
        return torch.from_numpy(out).to(x.device, x.dtype).view(b, t, -1)


register(Backbone(
    name="blazepose", family="mediapipe", level="frame", dim=2 * LANDMARKS * 4, make=PoseFrames, n_params=0,
    input=InputSpec(image(), short_side=256, crop_size=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    weights=WEIGHTS, fixed_weights=True, landmarks=Landmarks(LANDMARKS, 4, box="span"),
))
