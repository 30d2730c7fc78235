"""params.yaml as typed sections, checked at the start of every command.

A typo or a wrong type stops with the key path, what was expected and, for typos, the nearest
valid key. Stages read only their own sections, and dvc.yaml declares exactly those keys; the
`runtime` section changes how fast a result is computed, not what it is, so no stage declares it.
"""
from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from pipeline.core.errors import BouldersegError
from pipeline.core.names import name_problem

DEFAULT_PARAMS = Path("params.yaml")


def _name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Name = Annotated[str, AfterValidator(_name)]  # a video key or a head: it becomes a file name, never a path
Pooling = Literal["stack", "mean"]  # frame-level features over a window: stacked or averaged


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Data(Section):
    fps: float = Field(gt=0)  # pipeline frame rate: labels and frames are both sampled at i / fps


class Weights(Section):
    pretrained: bool = True  # false: random weights everywhere (the offline smoke run)
    seed: int = 0  # random-init seed, so every video sees the same untrained network


class Columns(Section):
    label: str | None = None
    start: str | None = None
    duration: str | None = None
    end: str | None = None
    video: str | None = None


class Labels(Section):
    classes: list[str] = Field(min_length=1)
    default: str = "nothing"
    drop: list[str] = []
    merge: dict[str, str] = {}
    overlap: Literal["later_wins", "priority", "error"] = "later_wins"
    priority: list[str] = []
    time_unit: Literal["auto", "s", "ms", "frames"] = "auto"
    annotation_fps: float | None = Field(default=None, gt=0)
    columns: Columns = Columns()
    map: dict[str, str] = {}


class Frames(Section):
    short_side: int | None = Field(default=256, gt=0)  # the short side after resizing (rows of a landscape video, columns
    # of a portrait one), never above the source's; null: the source's size
    jpg_quality: int = Field(default=90, ge=1, le=100)


class Persons(Section):
    detector: Literal["yolo", "blazepose", "hog"] = "yolo"  # pipeline/persons/
    model: str = "yolo11n"  # yolo's
    imgsz: int = Field(default=320, gt=0)
    conf: float = Field(default=0.25, ge=0, le=1)
    every: int = Field(default=5, gt=0)  # detect on every n-th frame; frames between carry their neighbours' decision
    # how the filter looks (pipeline/persons/filter.py Search); the defaults look as boulderseg did before them
    short_side: int | None = Field(default=None, gt=0)  # decode the source at this short side; null: the stored JPGs
    tiles: list[Annotated[int, Field(ge=2, le=6)]] = []  # tile grids (2: 2x2 tiles of 3/4 side; 3: 3x3 of 1/2)
    track: bool = False  # look around the climber's last box first; link detections; bridge misses
    max_gap: float = Field(default=1.0, ge=0)  # seconds: a track stays live this long; a miss this short is bridged
    min_foreground: float | None = Field(default=None, ge=0, le=1)  # a track that never stands out from the wall is dropped


class Backbones(Section):
    """Backbones to extract, listed under their library family: each family's code is its own DVC
    dependency, so editing one family never re-extracts another's features."""

    pytorchvideo: list[str] = []
    torchvision: list[str] = []
    s3dg: list[str] = []
    transformers: list[str] = []
    ultralytics: list[str] = []
    pixels: list[str] = []
    efficientnet: list[str] = []
    mediapipe: list[str] = []
    flow: list[str] = []

    def items(self) -> list[tuple[str, str]]:
        """(family, backbone) of every backbone listed, in family order."""
        return [(family, name) for family, names in self.model_dump().items() for name in names]


class Features(Section):
    backbones: Backbones = Backbones(pytorchvideo=["x3d_xs"])
    window: int = Field(default=16, gt=0)  # frames per window
    stride: int = Field(default=8, gt=0)  # frames between window starts
    # frame-level backbones: per-frame features stacked or averaged; one rule, or one per backbone or family
    # with `default` for the others, e.g. {default: mean, blazepose: stack}
    frame_pooling: Pooling | dict[str, Pooling] = "stack"
    clip: Literal["paper", "upstream"] = "paper"  # frames each window feeds: Table 3's, or the weights' own sampling
    dtype: Literal["float16", "float32"] = "float16"  # as stored
    skip_static: float | None = Field(default=None, ge=0)  # windows moving less than this (grey levels) reuse features
    pose_smoothing: Literal["none", "one_euro", "savgol"] = "none"  # pose backbones' landmark tracks over time
    crop: Literal["none", "climber"] = "none"  # climber: each window's clip cut around the persons stage's track
    crop_margin: float = Field(default=1.0, ge=0, le=2)  # share of the track's box added on each side
    crop_short_side: int | None = Field(default=720, gt=0)  # the source is decoded at this short side to cut from

    @model_validator(mode="after")
    def _pooling_names(self) -> Features:
        if isinstance(self.frame_pooling, dict):
            names = {"default", *Backbones.model_fields, *(name for _, name in self.backbones.items())}
            unknown = sorted(set(self.frame_pooling) - names)
            if "default" not in self.frame_pooling or unknown:
                raise ValueError(f"frame_pooling: a mapping names `default` (the rule of every backbone it does not "
                                 f"name) and only listed backbones or families{f', not {unknown}' if unknown else ''}, "
                                 "e.g. {default: mean, blazepose: stack}")
        return self

    def crop_settings(self) -> dict:
        """The crop keys as `pipeline.features.crop.Crop` takes them, and as a store records them."""
        return {"rule": self.crop, "margin": self.crop_margin, "short_side": self.crop_short_side}

    def pooling(self, backbone: str, family: str) -> str:
        """The frame pooling of `backbone` (of `family`): its own entry, else its family's, else `default`."""
        rule = self.frame_pooling
        return rule if isinstance(rule, str) else rule.get(backbone, rule.get(family, rule["default"]))


class Stats(Section):
    bins: int = Field(default=10, gt=0)


class Head(Section):
    epochs: int | None = Field(default=None, gt=0)  # Adam's epochs; null only for a solved head (logreg)
    lr: float | None = Field(default=None, gt=0)
    select_epochs: list[Annotated[int, Field(gt=0)]] | None = None  # train.select nested: the epochs to choose among
    weight_decay: float = Field(default=0.0, ge=0)
    batch: int | None = Field(default=None, gt=0)  # windows (window heads) or videos (sequence heads) per step; null: all
    model: dict[str, Any] = {}  # the head's own keyword arguments (hidden, layers, dropout…)


class Loss(Section):
    class_weights: Literal["none", "inverse_frequency"] = "none"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    focal_gamma: float = Field(default=0.0, ge=0)  # > 0: focal loss


class Train(Section):
    seed: int = 0
    folds: int = Field(default=4, ge=2)
    min_person_fraction: float = Field(default=0.5, ge=0, le=1)
    loss: Loss = Loss()
    mode_filter: int = Field(default=0, ge=0)  # frames; > 1: also score predictions after a mode filter this wide
    heads: dict[Name, Head] = Field(min_length=1)
    select: Literal["none", "nested"] = "none"  # nested: each outer fold chooses each head's epochs on its own videos
    inner_folds: int = Field(default=3, ge=2)  # nested: climb-grouped inner splits of an outer fold's training videos
    fusions: list[Annotated[list[Name], Field(min_length=2, max_length=2)]] = []  # pairs of backbones, trained fused

    @model_validator(mode="after")
    def _distinct_pairs(self) -> Train:
        seen: set[frozenset[str]] = set()
        for pair in self.fusions:
            if pair[0] == pair[1]:
                raise ValueError(f"fusion {pair} fuses a backbone with itself")
            if frozenset(pair) in seen:
                raise ValueError(f"fusion {pair} is listed twice (in either order); keep one")
            seen.add(frozenset(pair))
        return self


class Video(Section):
    climb: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]  # groups the views of one climb: they always share a cross-validation fold
    video: str
    annotation: str
    view: str | None = None
    sheet: str | None = None  # workbook sheet holding this video's rows
    offset: float = 0.0  # seconds added to every annotated time to get the video time


class UnannotatedVideo(Section):
    """A video nobody annotated yet: frames, persons and features only; `boulderseg predict --all-unannotated` segments it."""

    video: str
    climb: Annotated[str | None, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = None
    view: str | None = None


class Runtime(Section):
    """How fast, not what: changing these reruns no stage."""

    device: str = "auto"  # auto: cuda when available, else cpu (persons, features)
    weights_dir: str = "weights"  # where pretrained weight files are looked for and downloaded to
    frames_workers: int | None = Field(default=None, gt=0)  # decoding processes; None: one per core
    persons_batch: int = Field(default=16, gt=0)  # frames per detector forward pass
    features_batch: int | None = Field(default=None, gt=0)  # windows per backbone forward pass; None: the device's
    features_workers: int = Field(default=2, gt=0)  # JPG-decoding threads
    warm_seconds: float = Field(default=120, ge=0)  # persons/features run in a warm process kept this long idle; 0: off


class Params(Section):
    data: Data
    weights: Weights = Weights()
    labels: Labels
    frames: Frames = Frames()
    persons: Persons = Persons()
    features: Features = Features()
    stats: Stats = Stats()
    train: Train
    videos: dict[Name, Video] = Field(min_length=1)
    unannotated: dict[Name, UnannotatedVideo] = {}
    runtime: Runtime = Runtime()

    @model_validator(mode="after")
    def _keys_name_one_video(self) -> Params:
        both = sorted(set(self.videos) & set(self.unannotated))
        if both:
            raise ValueError(f"{', '.join(both)} listed under both videos and unannotated; keep one entry per video")
        listed = {b for _, b in self.features.backbones.items()}
        for pair in self.train.fusions:
            if set(pair) - listed:
                raise ValueError(f"train.fusions {pair}: {', '.join(sorted(set(pair) - listed))} not listed under "
                                 "features.backbones; list it there so its features are extracted")
        return self

    @model_validator(mode="after")
    def _windows_cover_every_frame(self) -> Params:
        f = self.features
        if f.stride > f.window:
            raise ValueError(f"features.stride ({f.stride}) is larger than features.window ({f.window}): the "
                             f"{f.stride - f.window} frames between consecutive windows would belong to no window, so no feature "
                             "would see them and no head would learn their labels. Set features.stride to at most "
                             f"features.window ({f.window}: windows that touch), or raise features.window")
        return self


def load(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and check params.yaml; every problem is reported at once, each with its key path."""
    path = Path(path)
    if not path.is_file():
        raise BouldersegError(f"{path}: params file not found. Run from the project root or pass --params PATH.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise BouldersegError(f"{path}: not valid YAML: {e}") from e
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        problems = [_describe(err) for err in e.errors()]
        raise BouldersegError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)) from None


_MOVED = {"features.backbone": "features.backbones.<family> (a list per library family)",
          "weights.dir": "runtime.weights_dir", "frames.workers": "runtime.frames_workers",
          "persons.batch": "runtime.persons_batch", "persons.device": "runtime.device",
          "frames.height": "frames.short_side (rows of a landscape video, columns of a portrait one)",
          "features.batch_size": "runtime.features_batch", "features.device": "runtime.device",
          "features.workers": "runtime.features_workers"}
_EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "bool_type": "true or false", "string_type": "a string",
    "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _describe(err: dict) -> str:
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "lax-", "strict-"))]
    where = ".".join(loc) or "(top level)"
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden" and where in _MOVED:
        why = " (it changes speed, not results, so no stage reruns for it)" if _MOVED[where].startswith("runtime.") else ""
        return f"{where}: moved to {_MOVED[where]}{why}"
    if kind == "extra_forbidden":
        valid = _keys_at(loc[:-1])
        near = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'? " if near else ""
        return f"{where}: unknown key; {hint}valid keys: {', '.join(valid)}"
    if kind == "missing":
        return f"{where}: missing (required)"
    if kind == "value_error" and not loc:  # a check across sections: its message says it all
        return err["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":  # a mapping's key, e.g. a video key
        return f"{'.'.join(loc[:-2])}: {err['msg'].removeprefix('Value error, ')}"
    shown = f"{value!r} ({type(value).__name__})"
    if kind in _EXPECTED:
        hint = " (remove the quotes)" if isinstance(value, str) and _looks_numeric(value) else ""
        return f"{where}: expected {_EXPECTED[kind]}, got {shown}{hint}"
    return f"{where}: {err['msg'][0].lower()}{err['msg'][1:]}, got {shown}"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip().lower() in ("true", "false")
    return True


def _keys_at(loc: list[str]) -> list[str]:
    """The valid keys of the mapping at `loc` (dict entries, e.g. a video's key, are stepped over)."""
    node: Any = Params
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = node.model_fields[part].annotation if part in node.model_fields else None
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            return []
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []
