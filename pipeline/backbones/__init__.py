"""Frozen video backbones: a typed registry, one contract.

Every entry builds a module mapping clips (B, C, T, H, W), normalised as its `InputSpec` says,
to features (B, feature_dim). Adding a backbone is one `register(...)` call; the tests are
parametrised over `REGISTRY`.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import BouldersegError
from pipeline.weights import WeightsFile, load_state

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class InputSpec:
    num_frames: int  # frames sampled uniformly from each window
    crop_size: int  # square centre crop, pixels
    short_side: int  # frames are resized so their short side is this, before cropping
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Backbone:
    name: str
    feature_dim: int
    input: InputSpec
    weights: WeightsFile
    make: Callable[[], nn.Module]  # randomly initialised network, classifier removed
    unpack_state: Callable[[Any], dict] = lambda ckpt: ckpt  # checkpoint -> state dict of `make()`

    def build(self, *, pretrained: bool, weights_dir: str | Path, seed: int = 0) -> tuple[nn.Module, dict]:
        """The frozen feature extractor in eval mode, and the provenance of its weights.

        Pretrained weights come from `weights_dir`, checked against their pin. Without them the
        weights are drawn from `seed`, so every video sees the same network.
        """
        torch.manual_seed(seed)
        model = self.make()
        provenance: dict[str, Any] = {"pretrained": False, "random_init_seed": seed}
        if pretrained:
            loaded = load_state(self.weights, weights_dir, to_state=self.unpack_state)
            model.load_state_dict(loaded.state)
            provenance = loaded.provenance
        model.eval().requires_grad_(False)
        return model, provenance


REGISTRY: dict[str, Backbone] = {}


def register(backbone: Backbone) -> Backbone:
    REGISTRY[backbone.name] = backbone
    return backbone


def get(name: str) -> Backbone:
    if name not in REGISTRY:
        raise BouldersegError(
            f"unknown backbone '{name}' (features.backbone in params.yaml). Known: {', '.join(REGISTRY)}."
        )
    return REGISTRY[name]


def _pytorchvideo_x3d(variant: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        with warnings.catch_warnings():  # pytorchvideo's torch.jit.script use is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            from pytorchvideo.models.hub import x3d

        model = getattr(x3d, variant)(pretrained=False)
        head = model.blocks[-1]
        head.proj, head.activation = nn.Identity(), None  # keep the 2048-d penultimate layer
        return _Flatten(model)

    return make


class _Flatten(nn.Module):
    """(B, D, 1, 1, 1) or (B, 1, 1, 1, D) head outputs -> (B, D)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, D)
        return self.model(x).flatten(1)


def _pytorchvideo_checkpoint(ckpt: dict) -> dict:
    # the proj layer is dropped: its weights are the Kinetics classifier we do not use
    return {f"model.{k}": v for k, v in ckpt["model_state"].items() if ".proj." not in k}


_X3D_ROOT = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"
# The model zoo publishes no checksums and the files cannot be fetched here to compute them, so
# these are not pinned yet: a load warns with the file's sha256 to pin (pipeline.weights.check).
for _variant, _spec in {
    "x3d_xs": InputSpec(num_frames=4, crop_size=160, short_side=182),
    "x3d_s": InputSpec(num_frames=13, crop_size=160, short_side=182),
    "x3d_m": InputSpec(num_frames=16, crop_size=224, short_side=256),
}.items():
    register(Backbone(
        name=_variant,
        feature_dim=2048,
        input=_spec,
        weights=WeightsFile(f"{_X3D_ROOT}/{_variant.upper()}.pyth", sha256=None),
        make=_pytorchvideo_x3d(_variant),
        unpack_state=_pytorchvideo_checkpoint,
    ))
