"""The feature store: one Zarr group per video and backbone, recording what produced it.

    features/<backbone>/<video>.zarr
      features     (n_windows, feature_dim) float16 or float32 (features.dtype), chunked along time
      frame_range  (n_windows, 2) int32: window w covers frames [start, end)
      clip_frames  (n_windows, T) int32: the frames window w fed its backbone (its clip, centred on the window)
      computed     (n_windows,) bool, only with features.skip_static: whether window w ran the backbone (else it
                   holds the last computed window's features)
      motion       (n_windows,) float32, likewise: its clip's difference from the last computed one (NaN: first)
      crop_boxes   (n_windows, 4) float32, only with features.crop climber: the square (x0, y0, x1, y1) each window's
                   clip was cut to, in stored-frame pixels (the whole frame where the window saw no climber)
      attrs        the configuration (CONFIG: backbone, weights, preprocessing, windows, dtype, the rows of
                   the frames and a hash of those read; OPTIONAL ones when set: skip_static, pose_smoothing,
                   boxes: a hash of the person boxes fed, crop_track: the hash of the crop boxes (the persons
                   parquet's own goes with the run's, crop_persons_sha256), frames_short_side: the frames.short_side
                   the frames were written with), then how it ran (device, precision) and the code version

A store is used only for the configuration it records: one that differs is rebuilt, never read.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError

CHUNK_ROWS = 256
CONFIG = ("backbone", "family", "level", "feature_dim", "weights", "preprocessing", "fps", "window", "stride",
          "dtype", "n_frames", "frame_height", "frames_sha256")
OPTIONAL = ("skip_static", "pose_smoothing", "boxes", "crop_track", "frames_short_side")  # recorded only when set: a store made without is as before


CODE = ("features/extract.py", "features/crop.py", "features/windows.py", "media/source.py", "features/store.py", "media/probe.py", "core/prefetch.py",
        "core/device.py", "core/weights.py", "features/backbones/__init__.py")  # under pipeline/
SHARED = {"mediapipe": ("models/blazepose.py", "features/smoothing.py"),  # a family's shared code
          "ultralytics": ("models/ultralytics.py", "features/smoothing.py")}


def code_version(family: str) -> str:
    """Package version and a hash of the code that computes a family's features (its DVC code deps), so a
    rebuild by the same code writes the same bytes whatever else the checkout holds."""
    try:
        pkg = version("boulderseg")
    except PackageNotFoundError:
        pkg = "unknown"
    here, h = Path(__file__).parents[1], hashlib.sha256()
    for name in (*CODE, f"features/backbones/{family}.py", *SHARED.get(family, ())):
        if (here / name).is_file():
            h.update((here / name).read_bytes())
    return f"{pkg}+{h.hexdigest()[:12]}"


@dataclass(frozen=True)
class FeatureSet:
    features: np.ndarray  # (n_windows, D) as stored
    frame_range: np.ndarray  # (n_windows, 2) int32
    attrs: dict[str, Any]
    computed: np.ndarray | None = None  # (n_windows,) bool, stores made with features.skip_static only


def write(path: str | Path, features: np.ndarray, frame_range: np.ndarray, attrs: dict[str, Any], *,
          clip_frames: np.ndarray | None = None, computed: np.ndarray | None = None,
          motion: np.ndarray | None = None, crop_boxes: np.ndarray | None = None) -> FeatureSet:
    """Write atomically: readers never see a half-written store. `attrs` must hold every CONFIG key;
    `clip_frames` (n_windows, T): the frames each window fed; `computed`, `motion` (n_windows,), `crop_boxes`
    (n_windows, 4): see above."""
    missing = [k for k in CONFIG if k not in attrs]
    if missing:
        raise ValueError(f"feature store attrs lack {missing}")
    attrs = {k: v for k, v in attrs.items() if not (k in OPTIONAL and v is None)}
    attrs = attrs | {"code_version": code_version(str(attrs["family"]))}
    with atomic_output(path, directory=True) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        compressors = [zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")]
        arrays = {"features": features, "frame_range": frame_range.astype(np.int32)}
        extra = {"clip_frames": clip_frames, "computed": computed, "motion": motion, "crop_boxes": crop_boxes}
        arrays |= {k: v.astype({"computed": bool, "motion": np.float32, "crop_boxes": np.float32}.get(k, np.int32))
                   for k, v in extra.items() if v is not None}
        for name, data in arrays.items():
            array = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=(CHUNK_ROWS, *data.shape[1:]),
                                       compressors=compressors if name == "features" else "auto", fill_value=0)
            # one chunk per write: zarr writes a whole array's chunks concurrently and, when one fails (a full
            # disk), the others go on after the error, re-creating files in the temp folder once it is removed
            for lo in range(0, len(data), CHUNK_ROWS):
                array[lo : lo + CHUNK_ROWS] = data[lo : lo + CHUNK_ROWS]
        group.attrs.update(attrs)
    return FeatureSet(features, frame_range.astype(np.int32), json.loads(json.dumps(attrs)),  # as a reader sees them
                      None if computed is None else computed.astype(bool))


def differences(attrs: Mapping[str, Any], expect: Mapping[str, Any]) -> list[str]:
    """Where a store's recorded configuration differs from `expect` (a dict value: only the keys it names)."""
    out = []
    for key, want in expect.items():
        have = attrs.get(key)
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            out += [f"{key}.{k}: stored {have.get(k)!r}, expected {v!r}" for k, v in want.items() if have.get(k) != v]
        elif have != want:
            out.append(f"{key}: stored {have!r}, expected {want!r}")
    return out


def read(path: str | Path, *, expect: Mapping[str, Any] | None = None) -> FeatureSet:
    """The store at `path`; with `expect`, refused when its recorded configuration differs."""
    path = Path(path)
    try:
        group = zarr.open_group(str(path), mode="r")
        fs = FeatureSet(group["features"][:], group["frame_range"][:], dict(group.attrs),
                        group["computed"][:] if "computed" in group else None)
    except (FileNotFoundError, KeyError, zarr.errors.BaseZarrError) as e:
        raise BouldersegError(f"{path}: not a boulderseg feature store ({e}). Run `boulderseg stage features` for it.") from e
    stale = differences(fs.attrs, expect or {})
    if stale:
        raise BouldersegError(f"{path}: stale feature store, made with another configuration ({'; '.join(stale)}). "
                              "Rerun `dvc repro` to rebuild it.")
    return fs


def attrs(path: str | Path) -> dict[str, Any]:
    """A store's recorded attributes alone, without reading its arrays."""
    try:
        return dict(zarr.open_group(str(path), mode="r").attrs)
    except (FileNotFoundError, zarr.errors.BaseZarrError) as e:
        raise BouldersegError(f"{path}: not a boulderseg feature store ({e}). Run `boulderseg stage features` for it.") from e


def reuse(path: str | Path, config: Mapping[str, Any]) -> FeatureSet | None:
    """The store at `path` if it records exactly `config` (every CONFIG key), else None."""
    try:
        fs = read(path)
    except BouldersegError:
        return None
    config = json.loads(json.dumps(dict(config)))  # as the store holds it: tuples become lists
    return fs if all(fs.attrs.get(k) == config.get(k) for k in (*CONFIG, *OPTIONAL)) else None
