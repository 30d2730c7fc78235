"""torchvision's Kinetics-400 video models (S3D, MViT v2, Video Swin, R(2+1)D), classifier removed.

Their files are named after their sha256 (`s3d-d76dad2f.pth`), which pins them."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pipeline.core.weights import Checkpoint, WeightsFile
from pipeline.features.backbones import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, Backbone, Clip, InputSpec, register

MODELS = "https://download.pytorch.org/models"
KINETICS_TV_MEAN, KINETICS_TV_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)


def _network(builder: str, classifier: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models import video

        model = getattr(video, builder)(weights=None)
        setattr(model, classifier, nn.Identity())  # (B, C, T, H, W) -> (B, D)
        return model

    return make


def _checkpoint(file: str, classifier: str) -> Checkpoint:
    def to_state(state: dict) -> dict:
        return {k: v for k, v in state.items() if not k.startswith(f"{classifier}.")}

    return Checkpoint(WeightsFile(f"{MODELS}/{file}", sha256=None), to_state)


CONVOLUTIONAL = ("s3d_k", "r2plus1d_18")  # the transformers (mvit, swin3d) gain nothing from channels-last

# Upstream: each weights enum's own transforms() and documented evaluation clip (frame_rate, clip_len):
# torchvision.models.video.<Model>_Weights.KINETICS400_V1. paper_frames: Table 3 (s3d_k only).
for name, builder, classifier, dim, spec, file, n_params in [
    ("s3d_k", "s3d", "classifier", 1024, InputSpec(Clip(128, 1 / 15), 256, 224, KINETICS_TV_MEAN, KINETICS_TV_STD,
                                                   paper_frames=16, resize=(256, 256)), "s3d-d76dad2f.pth", 7910048),
    ("mvit_v2_s", "mvit_v2_s", "head", 768, InputSpec(Clip(16, 1 / 7.5), 256, 224, KINETICS_MEAN, KINETICS_STD),
     "mvit_v2_s-ae3be167.pth", 34230144),
    ("swin3d_t", "swin3d_t", "head", 768, InputSpec(Clip(32, 1 / 15), 256, 224, IMAGENET_MEAN, IMAGENET_STD),
     "swin3d_t-7615ae03.pth", 27850470),
    ("r2plus1d_18", "r2plus1d_18", "fc", 512, InputSpec(Clip(16, 1 / 15), 128, 112, KINETICS_TV_MEAN, KINETICS_TV_STD,
                                                        resize=(128, 171)), "r2plus1d_18-91a641e6.pth", 31300125),
]:
    register(Backbone(name=name, family="torchvision", level="segment", dim=dim, input=spec,
                      weights=_checkpoint(file, classifier), make=_network(builder, classifier), n_params=n_params,
                      channels_last=name in CONVOLUTIONAL))
