"""`persons.detector` -> the detector it names, built with the persons section's settings."""
from __future__ import annotations

from pathlib import Path

from pipeline.core.params import Persons
from pipeline.persons.detector import PersonDetector


def build(persons: Persons, *, pretrained: bool, weights_dir: str | Path, seed: int = 0,
          device: str = "auto") -> PersonDetector:
    """The detector `persons.detector` names, with `persons`' settings. `pretrained` only concerns yolo:
    blazepose's weights ship with its package and hog has none to learn."""
    if persons.detector == "blazepose":
        from pipeline.persons.blazepose import BlazePoseDetector

        return BlazePoseDetector(conf=persons.conf)
    if persons.detector == "hog":
        from pipeline.persons.hog import Hog

        return Hog(conf=persons.conf)
    from pipeline.persons.yolo import Yolo

    return Yolo(model=persons.model, pretrained=pretrained, weights_dir=weights_dir, imgsz=persons.imgsz,
                conf=persons.conf, seed=seed, device=device)
