"""S3D-G trained on HowTo100M with MIL-NCE (Miech et al., CVPR 2020): the paper's `s3d_h`.

torchvision's S3D has no feature gating, so the network is written here, its parameter names laid
out as the published PyTorch port's checkpoint (`s3d_howto100m.pth`) has them. Features are the
1024-d global average of `mixed_5c`, the ones that checkpoint's authors recommend for downstream tasks;
its text tower and joint-embedding layer are not loaded.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.weights import Checkpoint, WeightsFile
from pipeline.features.backbones import Backbone, Clip, InputSpec, register


class Unit(nn.Module):
    """Conv-BN-ReLU; `separable` splits a t x k x k kernel into 1 x k x k then t x 1 x 1, each with BN-ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int], *, padding: tuple[int, int, int] = (0, 0, 0),
                 separable: bool = False):
        super().__init__()
        t, k, _ = kernel
        spatial, pad = ((1, k, k), (0, *padding[1:])) if separable else (kernel, padding)
        self.conv1, self.bn1 = nn.Conv3d(c_in, c_out, spatial, padding=pad, bias=False), nn.BatchNorm3d(c_out)
        self.separable = separable
        if separable:
            self.conv2 = nn.Conv3d(c_out, c_out, (t, 1, 1), padding=(padding[0], 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))) if self.separable else x


class Gate(nn.Module):
    """Feature gating: each channel scaled by a sigmoid of a linear map of the channels' global means."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        return x * torch.sigmoid(self.fc(x.mean((2, 3, 4))))[:, :, None, None, None]


class Mixed(nn.Module):
    """Inception block: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 | pool -> 1x1x1, each branch gated."""

    def __init__(self, c_in: int, b0: int, b1: tuple[int, int], b2: tuple[int, int], b3: int):
        super().__init__()
        self.conv_b0 = Unit(c_in, b0, (1, 1, 1))
        self.conv_b1_a, self.conv_b1_b = Unit(c_in, b1[0], (1, 1, 1)), Unit(b1[0], b1[1], (3, 3, 3), padding=(1, 1, 1),
                                                                             separable=True)
        self.conv_b2_a, self.conv_b2_b = Unit(c_in, b2[0], (1, 1, 1)), Unit(b2[0], b2[1], (3, 3, 3), padding=(1, 1, 1),
                                                                             separable=True)
        self.conv_b3_b = Unit(c_in, b3, (1, 1, 1))
        self.gating_b0, self.gating_b1, self.gating_b2, self.gating_b3 = Gate(b0), Gate(b1[1]), Gate(b2[1]), Gate(b3)
        self.out_channels = b0 + b1[1] + b2[1] + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.gating_b0(self.conv_b0(x)), self.gating_b1(self.conv_b1_b(self.conv_b1_a(x))),
                    self.gating_b2(self.conv_b2_b(self.conv_b2_a(x))),
                    self.gating_b3(self.conv_b3_b(F.max_pool3d(x, 3, stride=1, padding=1)))]
        return torch.cat(branches, 1)


def pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """TensorFlow's 'SAME' max pooling: zero padding (inputs are >= 0 after ReLU), extra on the far side."""
    pads = [(max(k - s, 0) // 2, max(k - s, 0) - max(k - s, 0) // 2) for k, s in zip(kernel, stride)]  # t, h, w
    (t0, t1), (h0, h1), (w0, w1) = pads
    return F.max_pool3d(F.pad(x, (h0, h1, w0, w1, t0, t1)), kernel, stride, ceil_mode=True)  # the port's order


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, 8C, T/2, H/2, W/2): each 2x2x2 block's pixels become channels, offsets first."""
    b, c, t, h, w = x.shape
    x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
    return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)


class S3DG(nn.Module):
    """(B, 3, T, H, W) in [0, 1], T, H and W even -> (B, 1024) globally averaged `mixed_5c` features."""

    def __init__(self):
        super().__init__()
        self.conv1 = Unit(24, 64, (2, 4, 4), padding=(1, 2, 2))  # on space_to_depth input
        self.conv_2b = Unit(64, 64, (1, 1, 1))
        self.conv_2c = Unit(64, 192, (3, 3, 3), padding=(1, 1, 1), separable=True)
        self.gating = Gate(192)
        self.mixed_3b = Mixed(192, 64, (96, 128), (16, 32), 32)
        self.mixed_3c = Mixed(256, 128, (128, 192), (32, 96), 64)
        self.mixed_4b = Mixed(480, 192, (96, 208), (16, 48), 64)
        self.mixed_4c = Mixed(512, 160, (112, 224), (24, 64), 64)
        self.mixed_4d = Mixed(512, 128, (128, 256), (24, 64), 64)
        self.mixed_4e = Mixed(512, 112, (144, 288), (32, 64), 64)
        self.mixed_4f = Mixed(528, 256, (160, 320), (32, 128), 128)
        self.mixed_5b = Mixed(832, 256, (160, 320), (32, 128), 128)
        self.mixed_5c = Mixed(832, 384, (192, 384), (48, 128), 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(space_to_depth(x))[:, :, 1:, 1:, 1:]  # the port's way of matching TF 'SAME' padding
        x = pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = self.mixed_3c(self.mixed_3b(pool_same(x, (1, 3, 3), (1, 2, 2))))
        x = pool_same(x, (3, 3, 3), (2, 2, 2))
        for block in (self.mixed_4b, self.mixed_4c, self.mixed_4d, self.mixed_4e, self.mixed_4f):
            x = block(x)
        x = self.mixed_5c(self.mixed_5b(pool_same(x, (2, 2, 2), (2, 2, 2))))
        return x.mean((2, 3, 4))


def _video_tower(state: dict) -> dict:
    """The checkpoint without its text tower and its joint-embedding layer (`fc`)."""
    return {k: v for k, v in state.items() if not k.startswith(("text_module.", "fc."))}


register(Backbone(
    name="s3d_h", family="s3dg", level="segment", dim=1024, make=S3DG, n_params=9146000, channels_last=True,
    # MIL-NCE (Miech et al., 2020) trained it on 32 frames at 10 fps, 224 px, RGB in [0, 1] with no normalisation
    input=InputSpec(Clip(32, 1 / 10), 256, 224, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), paper_frames=16),
    weights=Checkpoint(WeightsFile("https://www.rocq.inria.fr/cluster-willow/amiech/howto100m/s3d_howto100m.pth",
                                   sha256=None), _video_tower),
))
