"""Export the feature store in MS-TCN's data layout, so MS-TCN, ASFormer or DiffAct run on it unmodified.

OUT/features/<video>.npy     (D, T) float32
OUT/groundTruth/<video>.txt  one label per line, T lines
OUT/mapping.txt              "<index> <class>" per line
OUT/splits/train.split<K>.bundle, test.split<K>.bundle   "<video>.txt" per line, K = fold + 1
T is the number of frames (each frame takes its nearest window's features) or, with level
"window", of windows (each takes its window's majority label).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline import store
from pipeline.atomic import atomic_output
from pipeline.dataset import VideoData
from pipeline.errors import BouldersegError


def export_mstcn(out_dir: str | Path, *, videos: list[str], classes: list[str], folds_json: Path, labels_dir: Path,
                 features_dir: Path, backbone: str, level: Literal["frame", "window"] = "frame") -> int:
    """Write the layout for `videos`; the number of videos written."""
    folds = json.loads(Path(folds_json).read_text())
    with atomic_output(out_dir, directory=True) as tmp:
        for sub in ("features", "groundTruth", "splits"):
            (tmp / sub).mkdir()
        (tmp / "mapping.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes)))
        for name in videos:
            fs = store.read(features_dir / backbone / f"{name}.zarr")
            labels = pd.read_csv(labels_dir / f"{name}.csv")["label"].to_numpy(str)
            unknown = sorted(set(labels) - set(classes))
            if unknown:
                raise BouldersegError(f"{labels_dir / f'{name}.csv'}: labels {unknown} are not in labels.classes.")
            index = np.array([classes.index(c) for c in labels], np.int64)  # (N,) class of every frame
            v = VideoData(name, "", fs.features.astype(np.float32), fs.frame_range, index, np.ones(len(index), bool),
                          labels)
            if level == "frame":
                feats, truth = v.features[v.owner], labels
            else:
                feats = v.features
                truth = np.asarray(classes)[v.window_targets(n_classes=len(classes), min_person_fraction=0)]
            np.save(tmp / "features" / f"{name}.npy", np.ascontiguousarray(feats.T))  # (D, T)
            (tmp / "groundTruth" / f"{name}.txt").write_text("".join(f"{c}\n" for c in truth))
        for k, fold in enumerate(sorted(folds, key=lambda f: int(f.removeprefix("fold"))), 1):
            test = [v for v in folds[fold] if v in videos]
            train = [v for v in videos if v not in test]
            (tmp / "splits" / f"train.split{k}.bundle").write_text("".join(f"{v}.txt\n" for v in train))
            (tmp / "splits" / f"test.split{k}.bundle").write_text("".join(f"{v}.txt\n" for v in test))
    return len(videos)
