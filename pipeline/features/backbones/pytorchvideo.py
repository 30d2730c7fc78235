"""pytorchvideo's Kinetics-400 model zoo: X3D, Slow (the paper's R3D), I3D and SlowFast, all ResNet-style
networks whose classifier (`blocks[-1].proj`) is removed to give the penultimate features."""
from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from pipeline.core.weights import Checkpoint, WeightsFile
from pipeline.features.backbones import Backbone, Flatten, InputSpec, kinetics, register

ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"


def _hub(builder: str) -> nn.Module:
    with warnings.catch_warnings():  # pytorchvideo's torch.jit.script use is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        from pytorchvideo.models import hub

    model = getattr(hub, builder)(pretrained=False)
    head = model.blocks[-1]
    head.proj, head.activation = nn.Identity(), None  # keep the penultimate layer
    return model


def _network(builder: str) -> Callable[[], nn.Module]:
    return lambda: Flatten(_hub(builder))


class SlowFast(nn.Module):
    """One clip (B, C, T, H, W) -> the slow (every `alpha`-th frame) and fast (every frame) pathways."""

    def __init__(self, model: nn.Module, alpha: int = 4):
        super().__init__()
        self.model, self.alpha = model, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, 2304)
        t = x.shape[2]
        index = torch.linspace(0, t - 1, t // self.alpha, device=x.device).long()  # as pytorchvideo's PackPathway
        slow = x.index_select(2, index)  # (B, C, T / alpha, H, W)
        return self.model([slow, x]).flatten(1)  # a fresh list each call: the model rewrites it in place


def _checkpoint(name: str) -> Checkpoint:
    """The zoo's `.pyth` file ({"model_state": …}); its classifier weights are dropped."""
    def to_state(ckpt: dict) -> dict:
        return {f"model.{k}": v for k, v in ckpt["model_state"].items() if ".proj." not in k}

    # The zoo publishes no checksums and the files cannot be fetched here to compute them, so these
    # are not pinned yet: a load warns with the file's sha256 to pin (pipeline.core.weights.check).
    return Checkpoint(WeightsFile(f"{ZOO}/{name}", sha256=None), to_state)


# Upstream: the PyTorch Hub pages of pytorchvideo's models (side_size, crop_size, num_frames, sampling_rate at
# 30 fps: x3d_xs/s/m, slow_r50, slowfast_r50) and pytorchvideo's Kinetics evaluation (256 / 256) for i3d_r50;
# x3d_l (no hub page) from the X3D paper (356 / 312, 16 x 5). paper_frames: Table 3.
for name, builder, spec, file, n_params in [
    ("x3d_xs", "x3d_xs", InputSpec(kinetics(4, 12), 182, 182, paper_frames=4), "kinetics/X3D_XS.pyth", 2974674),
    ("x3d_s", "x3d_s", InputSpec(kinetics(13, 6), 182, 182, paper_frames=16), "kinetics/X3D_S.pyth", 2974674),
    ("x3d_m", "x3d_m", InputSpec(kinetics(16, 5), 256, 256, paper_frames=16), "kinetics/X3D_M.pyth", 2974674),
    ("x3d_l", "x3d_l", InputSpec(kinetics(16, 5), 356, 312, paper_frames=16), "kinetics/X3D_L.pyth", 5333784),
    ("r3d", "slow_r50", InputSpec(kinetics(8, 8), 256, 256, paper_frames=8), "kinetics/SLOW_8x8_R50.pyth", 31634496),
    ("i3d", "i3d_r50", InputSpec(kinetics(8, 8), 256, 256, paper_frames=16), "kinetics/I3D_8x8_R50.pyth", 27223872),
]:
    register(Backbone(name=name, family="pytorchvideo", level="segment", dim=2048, input=spec,
                      weights=_checkpoint(file), make=_network(builder), n_params=n_params, channels_last=True))

register(Backbone(
    name="slowfast_r50", family="pytorchvideo", level="segment", dim=2304,
    input=InputSpec(kinetics(32, 2), 256, 256, paper_frames=32),  # the fast pathway's; the slow one takes every 4th
    weights=_checkpoint("kinetics/SLOWFAST_8x8_R50.pyth"),
    make=lambda: SlowFast(_hub("slowfast_r50")), n_params=33644488, channels_last=True,
))
