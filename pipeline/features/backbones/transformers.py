"""Hugging Face transformers models: DINOv2 and CLIP per frame; ViViT, VideoMAE and V-JEPA 2 per clip.

Each is built from its published configuration (so it builds offline with random weights) and
loads the repository's weights file into `<weights dir>/huggingface/<repo>/`. Needs the
`transformers` extra.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import Checkpoint, WeightsFile
from pipeline.features.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, InputSpec, each_frame, image, kinetics, register

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


def _transformers():
    try:
        import transformers
    except ImportError:
        raise BouldersegError("this backbone needs Hugging Face transformers: pip install 'boulderseg[transformers]'"
                              ) from None
    transformers.logging.set_verbosity_error()
    return transformers


def _hub(repo: str, *, keep: Callable[[str], bool] = lambda k: True, strip: str = "",
         file: str = "model.safetensors") -> Checkpoint:
    """The repository's weights file; its keys filtered by `keep`, `strip` removed, under our wrapper's `model.`."""
    def to_state(state: dict[str, Any]) -> dict[str, Any]:
        return {f"model.{k.removeprefix(strip)}": v for k, v in state.items() if keep(k)}

    # Hugging Face publishes the files' sha256 (their LFS ids), but they cannot be fetched here to
    # check, so they are not pinned yet: a load warns with the file's sha256 to pin.
    url = f"https://huggingface.co/{repo}/resolve/main/{file}"
    return Checkpoint(WeightsFile(url, sha256=None, folder=f"huggingface/{repo}"), to_state)


class PerFrame(nn.Module):
    """An image model applied to every frame: (B, C, T, H, W) -> (B, T, d)."""

    def __init__(self, model: nn.Module, output: Callable[[Any], torch.Tensor]):
        super().__init__()
        self.model, self.output = model, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[2]
        return self.output(self.model(pixel_values=each_frame(x))).view(b, t, -1)


class PerClip(nn.Module):
    """A video model taking (B, T, C, H, W): (B, C, T, H, W) -> (B, D)."""

    def __init__(self, model: nn.Module, output: Callable[[Any], torch.Tensor], **kwargs: Any):
        super().__init__()
        self.model, self.output, self.kwargs = model, output, kwargs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.model(x.transpose(1, 2), **self.kwargs))


def _dinov2() -> nn.Module:
    t = _transformers()
    config = t.Dinov2Config(hidden_size=384, num_attention_heads=6, num_hidden_layers=12, patch_size=14,
                            image_size=518, layerscale_value=1.0)
    return PerFrame(t.Dinov2Model(config), lambda out: out.pooler_output)  # the normalised CLS token, 384


def _clip() -> nn.Module:
    t = _transformers()
    config = t.CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                                image_size=224, patch_size=32, projection_dim=512)
    return PerFrame(t.CLIPVisionModelWithProjection(config), lambda out: out.image_embeds)  # CLIP's 512-d embedding


def _vivit() -> nn.Module:
    t = _transformers()  # the defaults are google/vivit-b-16x2-kinetics400's: 32 frames, 224 px, tubelets 2x16x16
    return PerClip(t.VivitModel(t.VivitConfig(), add_pooling_layer=False), lambda out: out.last_hidden_state[:, 0])


def _videomae() -> nn.Module:
    t = _transformers()  # base, 16 frames, 224 px; the Kinetics fine-tune averages its tokens (fc_norm)
    model = t.VideoMAEForVideoClassification(t.VideoMAEConfig(use_mean_pooling=True, num_labels=400))
    model.classifier = nn.Identity()
    return PerClip(model, lambda out: out.logits)  # fc_norm(mean of tokens), 768


def _vjepa2() -> nn.Module:
    t = _transformers()  # the defaults are facebook/vjepa2-vitl-fpc64-256's: ViT-L, 256 px, tubelets 2x16x16
    return PerClip(t.VJEPA2Model(t.VJEPA2Config()), lambda out: out.last_hidden_state.mean(1), skip_predictor=True)


# Upstream: each model card's clip (ViViT 32 x 2, VideoMAE 16 x 4 at 30 fps; V-JEPA 2's fpc64: 64 frames, every
# 2nd at 30 fps assumed: its card states no step) and resize/crop/normalisation: the image processor classes' defaults, or the checkpoint's own
# preprocessor_config.json where it overrides them (DINOv2: 256 / 224 ImageNet; VideoMAE: ImageNet mean).
for backbone in [
    Backbone(name="dinov2_vits14", family="transformers", level="frame", dim=384, make=_dinov2, n_params=22056576,
             input=InputSpec(image(), 256, 224, IMAGENET_MEAN, IMAGENET_STD, paper_frames=8),
             weights=_hub("facebook/dinov2-small")),
    Backbone(name="clip_vit_b32", family="transformers", level="frame", dim=512, make=_clip, n_params=87849216,
             input=InputSpec(image(), 224, 224, CLIP_MEAN, CLIP_STD, paper_frames=8),
             weights=_hub("openai/clip-vit-base-patch32", keep=lambda k: k.startswith(("vision_model.",
                                                                                       "visual_projection.")))),
    Backbone(name="vivit", family="transformers", level="segment", dim=768, make=_vivit, n_params=88646400,
             input=InputSpec(kinetics(32, 2), 256, 224, HALF, HALF, paper_frames=32),
             weights=_hub("google/vivit-b-16x2-kinetics400", keep=lambda k: k.startswith("vivit."), strip="vivit.")),
    Backbone(name="videomae_b", family="transformers", level="segment", dim=768, make=_videomae, n_params=86227200,
             input=InputSpec(kinetics(16, 4), 224, 224, IMAGENET_MEAN, IMAGENET_STD),
             weights=_hub("MCG-NJU/videomae-base-finetuned-kinetics", keep=lambda k: not k.startswith("classifier."))),
    Backbone(name="vjepa2_l", family="transformers", level="segment", dim=1024, make=_vjepa2, n_params=325971328,
             input=InputSpec(kinetics(64, 2), 292, 256, IMAGENET_MEAN, IMAGENET_STD),
             weights=_hub("facebook/vjepa2-vitl-fpc64-256")),
]:
    register(backbone)
