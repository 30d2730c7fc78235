"""One video's cached artifacts joined for training: window features, frame labels, person filter."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.core.errors import BouldersegError
from pipeline.features import store

IGNORE = -100  # target of windows/frames left out of loss and metrics


@dataclass(frozen=True)
class VideoData:
    name: str
    climb: str
    features: np.ndarray  # (W, D) float32
    frame_range: np.ndarray  # (W, 2) int32
    frame_labels: np.ndarray  # (N,) int64 class index; IGNORE for classes in labels.drop
    frame_person: np.ndarray  # (N,) bool: the frame passes the person filter
    label_names: np.ndarray  # (N,) str: the label file's labels, dropped classes included

    @property
    def owner(self) -> np.ndarray:
        """(N,) index of the window whose centre is nearest to each frame (earlier on ties)."""
        return nearest_window(self.frame_range, len(self.frame_labels))

    def window_targets(self, *, n_classes: int, min_person_fraction: float) -> np.ndarray:
        """(W,) majority class of each window's scored frames (person, class not dropped); IGNORE where
        fewer than `min_person_fraction` of its frames show a person or none is scored. Ties: lower class."""
        targets = np.full(len(self.frame_range), IGNORE, np.int64)
        scored = self.scored
        for w, (s, e) in enumerate(self.frame_range):
            labels = self.frame_labels[s:e][scored[s:e]]
            if len(labels) and self.frame_person[s:e].mean() >= min_person_fraction:
                targets[w] = np.bincount(labels, minlength=n_classes).argmax()
        return targets

    @property
    def scored(self) -> np.ndarray:
        """(N,) bool: frames that count in metrics (a person is in them and their class is not dropped)."""
        return self.frame_person & (self.frame_labels != IGNORE)


def fuse(members: Sequence[VideoData]) -> VideoData:
    """One video's data from several backbones' stores of the same windows: (W, D1 + D2 + …) features, in order."""
    first = members[0]
    if any(not np.array_equal(m.frame_range, first.frame_range) for m in members[1:]):
        raise BouldersegError(f"{first.name}: the fused backbones' stores cut different windows. Extract them with one "
                              "features.window and features.stride (rerun `dvc repro`).")
    return replace(first, features=np.concatenate([m.features for m in members], axis=1))


def nearest_window(frame_range: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) index of the window of (W, 2) `frame_range` whose centre is nearest to each frame (earlier on ties)."""
    centres = (frame_range[:, 0] + frame_range[:, 1] - 1) / 2  # (W,) middle frame, sorted: windows start in order
    # a frame up to the midpoint between two centres (inclusive: ties go earlier) belongs to the earlier window;
    # of windows sharing a centre, the first
    nearest = np.searchsorted((centres[:-1] + centres[1:]) / 2, np.arange(n_frames), side="left")  # (N,)
    return np.searchsorted(centres, centres[nearest], side="left")


def load_video(
    name: str,
    climb: str,
    *,
    labels_csv: str | Path,
    persons_parquet: str | Path,
    features_zarr: str | Path,
    classes: list[str],
    dropped: Sequence[str] = (),
    expect: Mapping | None = None,
) -> VideoData:
    """Join one video's artifacts, checking they describe the same frames.

    Labels index into `classes` (what heads predict); frames of `dropped` classes get IGNORE.
    A feature store whose recorded configuration differs from `expect` is refused.
    """
    feats = store.read(features_zarr, expect=expect)
    labels = pd.read_csv(labels_csv)
    persons = pq.read_table(persons_parquet, columns=["frame", "person"]).to_pandas()
    n = len(labels)
    if len(persons) != n or feats.attrs["n_frames"] != n:
        raise BouldersegError(
            f"{name}: {labels_csv} has {n} frames, {persons_parquet} {len(persons)}, "
            f"{features_zarr} {feats.attrs['n_frames']}. Rerun `dvc repro` to rebuild them together."
        )
    index = {c: i for i, c in enumerate(classes)} | {c: IGNORE for c in dropped}
    unknown = sorted(set(labels["label"]) - index.keys())
    if unknown:
        raise BouldersegError(f"{labels_csv}: labels {unknown} are neither trained classes {classes} nor dropped "
                              f"{list(dropped)}. Rerun `dvc repro` to relabel with the current labels params.")
    return VideoData(
        name=name,
        climb=climb,
        features=feats.features.astype(np.float32),
        frame_range=feats.frame_range,
        frame_labels=labels["label"].map(index).to_numpy(np.int64),
        frame_person=persons["person"].to_numpy(bool),
        label_names=labels["label"].to_numpy(str),
    )


def group_folds(groups: dict[str, str], *, k: int, seed: int) -> dict[str, int]:
    """Fold of each video; all videos of a group (a climb: its face and profile views) share one.

    Groups are shuffled with `seed`, then each goes to the fold with the fewest videos so far.
    """
    unique = sorted(set(groups.values()))
    if not 2 <= k <= len(unique):
        raise BouldersegError(
            f"train.folds is {k} but there are {len(unique)} climbs: set it between 2 and {len(unique)}."
        )
    rng = np.random.default_rng(seed)
    sizes = {g: sum(v == g for v in groups.values()) for g in unique}
    order = sorted(rng.permutation(unique).tolist(), key=lambda g: -sizes[g])  # stable: ties keep shuffle
    load, fold_of = [0] * k, {}
    for g in order:
        fold_of[g] = int(np.argmin(load))
        load[fold_of[g]] += sizes[g]
    return {video: fold_of[g] for video, g in groups.items()}
