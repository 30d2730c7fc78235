"""Stage `features`: one video's frames -> features/<backbone>/<video>.zarr."""
from __future__ import annotations

from pathlib import Path

from pipeline import params
from pipeline.features import extract_features


def run(frames_dir: Path, out_zarr: Path, params_file: Path = params.DEFAULT_PARAMS) -> str:
    p = params.load(params_file)
    cfg, weights = params.section(p, "features"), params.section(p, "weights")
    fs = extract_features(frames_dir, out_zarr, backbone=cfg["backbone"], pretrained=weights["pretrained"],
                          weights_dir=weights["dir"], seed=weights["seed"], fps=float(params.section(p, "data.fps")),
                          window=cfg["window"], stride=cfg["stride"], batch_size=cfg["batch_size"],
                          device=cfg["device"], workers=cfg["workers"])
    return f"features {fs.features.shape}"
