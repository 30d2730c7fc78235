"""A weight-free baseline: what a run without any pretrained weights can still learn from.

Each clip's frames in grey at 16x16, and the differences between consecutive ones (motion).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.features.backbones import Backbone, InputSpec, image, register

SIDE = 16


class Pixels(nn.Module):
    """(B, C, T, H, W) in [0, 1] -> (B, T * 256 + (T - 1) * 256): small grey frames, then their differences."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = F.adaptive_avg_pool2d(x.mean(1), SIDE)  # (B, T, 16, 16)
        return torch.cat([small.flatten(1), (small[:, 1:] - small[:, :-1]).flatten(1)], 1)


_FRAMES = 8
register(Backbone(
    name="pixels", family="pixels", level="segment", dim=(2 * _FRAMES - 1) * SIDE * SIDE, make=Pixels, weights=None, n_params=0,
    input=InputSpec(image(_FRAMES), short_side=128, crop_size=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
))
