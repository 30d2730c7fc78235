"""Export the feature store in MS-TCN's data layout, so MS-TCN, ASFormer or DiffAct run on it unmodified.

OUT/features/<video>.npy     (D, T) float32
OUT/groundTruth/<video>.txt  one label per line, T lines
OUT/mapping.txt              "<index> <class>" per line
OUT/splits/train.split<K>.bundle, test.split<K>.bundle   "<video>.txt" per line, K = fold + 1
T is the number of frames (each frame takes its nearest window's features) or, with level
"window", of windows (each takes its window's majority label).

By default the ground truth follows the leaderboard's protocol: a frame that does not count there (its
class is dropped, or the person filter removed it; a window with too few person frames) is `background`,
MS-TCN's own background class, which forms no segment in its evaluation; so MS-TCN's Edit and F1@k on the
export are the leaderboard's. `raw=True` writes every frame's own label, with no background.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.core.atomic import atomic_output
from pipeline.learning.dataset import IGNORE, load_video

BACKGROUND = "background"  # MS-TCN's eval.py: bg_class=["background"]


def export_mstcn(out_dir: str | Path, *, videos: list[str], classes: list[str], folds_json: Path, labels_dir: Path,
                 persons_dir: Path, features_dir: Path, backbone: str, dropped: list[str] = (),
                 min_person_fraction: float = 0.5, level: Literal["frame", "window"] = "frame",
                 raw: bool = False) -> int:
    """Write the layout for `videos` (labels of `classes`, `dropped` ones not scored); the number written."""
    folds = json.loads(Path(folds_json).read_text())
    names = [*classes, *dropped] if raw else [*classes, BACKGROUND]
    with atomic_output(out_dir, directory=True) as tmp:
        for sub in ("features", "groundTruth", "splits"):
            (tmp / sub).mkdir()
        (tmp / "mapping.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(names)))
        for name in videos:
            v = load_video(name, "", labels_csv=labels_dir / f"{name}.csv", persons_parquet=persons_dir / f"{name}.parquet",
                           features_zarr=features_dir / backbone / f"{name}.zarr", classes=names if raw else classes,
                           dropped=() if raw else dropped)
            if raw:  # every frame labelled and counted: the person filter is not applied
                v = replace(v, frame_person=np.ones_like(v.frame_person))
            if level == "frame":
                feats = v.features[v.owner]
                truth = v.label_names if raw else np.where(v.scored, v.label_names, BACKGROUND)
            else:
                feats = v.features
                targets = v.window_targets(n_classes=len(names), min_person_fraction=min_person_fraction)
                truth = np.asarray([BACKGROUND if t == IGNORE else names[t] for t in targets])
            np.save(tmp / "features" / f"{name}.npy", np.ascontiguousarray(feats.T))  # (D, T)
            (tmp / "groundTruth" / f"{name}.txt").write_text("".join(f"{c}\n" for c in truth))
        for k, fold in enumerate(sorted(folds, key=lambda f: int(f.removeprefix("fold"))), 1):
            test = [v for v in folds[fold] if v in videos]
            train = [v for v in videos if v not in test]
            (tmp / "splits" / f"train.split{k}.bundle").write_text("".join(f"{v}.txt\n" for v in train))
            (tmp / "splits" / f"test.split{k}.bundle").write_text("".join(f"{v}.txt\n" for v in test))
    return len(videos)
