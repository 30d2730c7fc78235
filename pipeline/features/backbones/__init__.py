"""Frozen video backbones: a typed registry, one contract.

Every entry builds a frozen module mapping clips (B, C, T, H, W), normalised as its `InputSpec`
says, to features (B, feature_dim). Segment-level backbones see the clip whole; frame-level ones
see each frame, and their per-frame features are stacked over the clip (the paper) or averaged
(`features.frame_pooling`). Entries live in one module per library family
(`pipeline/features/backbones/<family>.py`), imported only when one of their backbones is asked for, so a
features stage runs, and DVC tracks, its own family's code alone. Adding a backbone is one
`register(...)` call in its family's module; the tests are parametrised over the registry.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import Loaded

FAMILIES = ("pytorchvideo", "torchvision", "s3dg", "transformers", "ultralytics", "pixels", "efficientnet", "mediapipe",
            "flow")
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


PAPER_FPS = 25  # Table 3's clips are consecutive frames at 25 fps


@dataclass(frozen=True)
class Clip:
    """The frames a backbone sees per window: how many, and how far apart in seconds."""

    frames: int
    step_s: float

    def step(self, fps: float) -> int:
        """Pipeline frames between two fed frames at `fps` (at least 1: no frame is fed twice)."""
        return max(1, round(self.step_s * fps))

    def seconds(self, fps: float) -> float:
        """The time the clip spans at `fps`: its frames times their step."""
        return round(self.frames * self.step(fps) / fps, 4)


def kinetics(frames: int, rate: int) -> Clip:
    """A Kinetics model card's `frames x sampling rate`: every `rate`-th frame of 30 fps video."""
    return Clip(frames, rate / 30)


def image(frames: int = 8) -> Clip:
    """An image model has no clip of its own: `frames` frames spread over the 16-frame window at 25 fps."""
    return Clip(frames, 2 / PAPER_FPS)


@dataclass(frozen=True)
class InputSpec:
    upstream: Clip  # the frames and spacing the weights were trained on (model card or hub config)
    short_side: int  # frames are resized so their short side is this
    crop_size: int | None  # then centre-cropped to a square; None: the whole frame, sides cut to a multiple of 32
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    paper_frames: int | None = None  # the paper's Table 3 clip: this many consecutive frames at 25 fps; None: not there
    resize: tuple[int, int] | None = None  # (H, W) to resize to exactly, aspect ignored (torchvision's fixed size)

    def clip(self, rule: str) -> Clip:
        """`paper`: Table 3's frames and span (models it lists); `upstream`: the weights' own sampling."""
        if rule == "paper" and self.paper_frames is not None:
            return Clip(self.paper_frames, 1 / PAPER_FPS)
        return self.upstream

    @property
    def needs_rows(self) -> int:
        """The short side the model's input is resized to: stored frames with fewer rows are upscaled."""
        return min(self.resize) if self.resize else self.short_side

    def as_dict(self) -> dict:
        return asdict(self)


class WeightsSource(Protocol):
    """Where an entry's pretrained weights come from, and how they become its module's state dict."""

    def describe(self) -> str:
        """URL or repository, for tables and messages."""

    def present(self, weights_dir: str | Path) -> bool:
        """Whether the weights are already in `weights_dir`."""

    def identify(self, weights_dir: str | Path) -> dict[str, Any]:
        """What the feature store records of the weights (file and sha256), fetching them if need be."""

    def load(self, weights_dir: str | Path) -> Loaded:
        """The state dict of `make()`'s module and its provenance; an error naming what is missing."""


class LandmarkLayout(Protocol):
    """A pose backbone's per-frame landmarks (`pipeline/features/smoothing.py`'s `Landmarks`), smoothable over time."""

    def smooth(self, frames: np.ndarray, vectors: np.ndarray, *, method: str, fps: float,
               size: tuple[int, int]) -> np.ndarray:
        """(N, dim) per-frame vectors of the fed `frames` (N,), in order -> the same, tracks smoothed by `method`."""


@dataclass(frozen=True)
class Backbone:
    name: str
    family: str  # the module under pipeline/features/backbones/ that registers it
    level: Literal["frame", "segment"]
    dim: int  # features per clip (segment level) or per frame (frame level)
    input: InputSpec
    weights: WeightsSource | None  # None: nothing to learn (pixels)
    make: Callable[[], nn.Module]  # random-init module: (B, C, T, H, W) -> (B, dim), or (B, T, dim) per frame
    n_params: int  # parameters of `make()`'s module (checked by the tests), for tables
    fixed_weights: bool = False  # no random-init variant (a TFLite graph): its shipped weights, whatever `pretrained`
    channels_last: bool = False  # its convolutions run 1.3-2.2x faster on channels-last weights (benchmarks/features.py)
    needs_boxes: bool = False  # its module also takes the tracked person's box per frame (B, T, 4), from the persons stage
    method: Mapping[str, Any] | None = None  # a weight-free entry's settings, recorded as its provenance
    landmarks: LandmarkLayout | None = None  # pose backbones: their per-frame layout, for features.pose_smoothing

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout its weights run in: channels-last (3-D for segment-level models) where that pays, else as built."""
        if not self.channels_last:
            return torch.contiguous_format
        return torch.channels_last if self.level == "frame" else torch.channels_last_3d

    @property
    def in_paper(self) -> bool:
        """One of the 13 backbones of the paper's Table 3 (or its stand-in): it has the paper's clip."""
        return self.input.paper_frames is not None

    def feature_dim(self, pooling: str = "stack") -> int:
        """Features per window: frame-level entries stack their clip's per-frame vectors unless averaged."""
        return self.dim * self.input.upstream.frames if self.level == "frame" and pooling == "stack" else self.dim

    def provenance(self, *, pretrained: bool, weights_dir: str | Path, seed: int = 0) -> dict[str, Any]:
        """The weights `build` would use, as the feature store records them."""
        if self.weights is None:
            return {"pretrained": False, "learned_parameters": False, **(self.method or {})}
        if pretrained or self.fixed_weights:
            return self.weights.identify(weights_dir)
        return {"pretrained": False, "random_init_seed": seed}

    def build(self, *, pretrained: bool, weights_dir: str | Path, seed: int = 0,
              pooling: str = "stack") -> tuple[nn.Module, dict[str, Any]]:
        """The frozen extractor in eval mode, (B, C, T, H, W) -> (B, feature_dim), and its weights' provenance.

        Pretrained weights come from `weights_dir`, checked against their pin. Without them the
        weights are drawn from `seed`, so every video sees the same network.
        """
        torch.manual_seed(seed)
        model = self.make()
        provenance = self.provenance(pretrained=False, weights_dir=weights_dir, seed=seed)
        if (pretrained or self.fixed_weights) and self.weights is not None:
            loaded = self.weights.load(weights_dir)
            model.load_state_dict(loaded.state)
            provenance = loaded.provenance
        if self.level == "frame":
            model = PoolFrames(model, pooling)
        model.eval().requires_grad_(False)
        return model, provenance


class PoolFrames(nn.Module):
    """Per-frame features (B, T, d) -> (B, T * d) stacked in time order, or (B, d) averaged. `boxes` (B, T, 4), for
    entries that need them, reach the model as its second argument."""

    def __init__(self, model: nn.Module, pooling: str):
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:  # (B, C, T, H, W) -> (B, D)
        per_frame = self.model(x) if boxes is None else self.model(x, boxes)  # (B, T, d)
        return per_frame.flatten(1) if self.pooling == "stack" else per_frame.mean(1)


class Flatten(nn.Module):
    """(B, D, 1, 1, 1), (B, 1, 1, 1, D) or (B, D) outputs -> (B, D)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, D)
        return self.model(x).flatten(1)


def each_frame(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) clips -> (B * T, C, H, W) images, in (clip, time) order."""
    return x.transpose(1, 2).flatten(0, 1)


REGISTRY: dict[str, Backbone] = {}


def register(backbone: Backbone) -> Backbone:
    if backbone.family not in FAMILIES:
        raise ValueError(f"{backbone.name}: unknown family {backbone.family}; add it to FAMILIES")
    if backbone.level == "frame" and backbone.input.clip("paper").frames != backbone.input.upstream.frames:
        raise ValueError(f"{backbone.name}: a frame-level clip stacks into the feature dim: one frame count for both rules")

    REGISTRY[backbone.name] = backbone
    return backbone


def load_family(family: str) -> None:
    """Register one family's backbones (imports its module, not the library it wraps)."""
    if family not in FAMILIES:
        raise BouldersegError(f"unknown backbone family '{family}'. Known: {', '.join(FAMILIES)}.")
    importlib.import_module(f"pipeline.features.backbones.{family}")


def load_all() -> dict[str, Backbone]:
    for family in FAMILIES:
        load_family(family)
    return REGISTRY


def get(name: str, family: str | None = None) -> Backbone:
    """The entry called `name`; with `family`, only that family's module is imported."""
    if family is not None:
        load_family(family)
    if name not in REGISTRY:
        load_all()
    if name not in REGISTRY:
        raise BouldersegError(f"unknown backbone '{name}'. Known: {', '.join(sorted(REGISTRY))} "
                              "(`boulderseg backbones` lists them).")
    if family is not None and REGISTRY[name].family != family:
        raise BouldersegError(f"backbone '{name}' is in the {REGISTRY[name].family} family, not {family}: list it "
                              f"under features.backbones.{REGISTRY[name].family} in params.yaml.")
    return REGISTRY[name]
