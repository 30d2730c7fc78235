"""Named params overrides, each run as `dvc exp run -S KEY=VALUE ...`, so params.yaml needs no edit by hand."""
from __future__ import annotations

import json

from pipeline.backbones import FAMILIES

# The person filter with weights pip ships: real keep decisions on a machine that cannot download YOLO.
SHIPPED_PERSONS = ("persons.detector=blazepose", "persons.conf=0.5")
# Every backbone whose weights arrive with pip (or that has none to learn), by family.
SHIPPED_BACKBONES = {"efficientnet": ["efficientnet_lite0"], "mediapipe": ["blazepose"], "pixels": ["pixels"]}


def airgapped() -> list[str]:
    """The whole pipeline with no network and only real weights: BlazePose persons, then efficientnet_lite0,
    blazepose and pixels features; every other family's list emptied."""
    backbones = [f"features.backbones.{family}={json.dumps(SHIPPED_BACKBONES.get(family, []))}" for family in FAMILIES]
    return ["weights.pretrained=true", *SHIPPED_PERSONS, *backbones]


def dvc_exp_run(overrides: list[str] | tuple[str, ...]) -> list[str]:
    return ["dvc", "exp", "run", *(arg for override in overrides for arg in ("-S", override))]
