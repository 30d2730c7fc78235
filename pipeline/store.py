"""The feature store: one Zarr group per video and backbone, recording what produced it.

    features/<backbone>/<video>.zarr
      features     (n_windows, feature_dim) float32, chunked along time
      frame_range  (n_windows, 2) int32: window w covers frames [start, end)
      attrs        backbone, weights, preprocessing, fps, window, stride, code version
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError

CHUNK_ROWS = 256


def code_version() -> str:
    """Package version plus the git commit (and '-dirty') of the code that ran, where known."""
    try:
        pkg = version("boulderseg")
    except PackageNotFoundError:
        pkg = "unknown"
    try:
        here = Path(__file__).parent
        commit = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "no-git"
    return f"{pkg}+{commit}"


@dataclass(frozen=True)
class FeatureSet:
    features: np.ndarray  # (n_windows, D) float32
    frame_range: np.ndarray  # (n_windows, 2) int32
    attrs: dict[str, Any]


def write(path: str | Path, features: np.ndarray, frame_range: np.ndarray, attrs: dict[str, Any]) -> None:
    """Write atomically: readers never see a half-written store."""
    with atomic_output(path, directory=True) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        compressors = [zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")]
        group.create_array("features", data=features.astype(np.float32),
                           chunks=(CHUNK_ROWS, features.shape[1]), compressors=compressors)
        group.create_array("frame_range", data=frame_range.astype(np.int32), chunks=(CHUNK_ROWS, 2))
        group.attrs.update(attrs | {"code_version": code_version()})


def read(path: str | Path) -> FeatureSet:
    path = Path(path)
    try:
        group = zarr.open_group(str(path), mode="r")
        return FeatureSet(group["features"][:], group["frame_range"][:], dict(group.attrs))
    except (FileNotFoundError, KeyError, zarr.errors.BaseZarrError) as e:
        raise BouldersegError(f"{path}: not a boulderseg feature store ({e}). Run `boulderseg features` for it.") from e
