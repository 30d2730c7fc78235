"""`boulderseg score`: any segmentation against any ground truth, as label CSVs (`frame,label`)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import BouldersegError
from pipeline.learning.metrics import frame_metrics, segment_metrics, segments


def read_labels(path: Path) -> np.ndarray:
    """The `label` column of a label CSV, in frame order."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise BouldersegError(f"{path}: not a readable CSV ({e}).") from None
    missing = {"frame", "label"} - set(table.columns)
    if missing:
        raise BouldersegError(f"{path}: no column {sorted(missing)}; a label CSV has at least `frame,label`.")
    return table.sort_values("frame")["label"].astype(str).to_numpy()


def pairs(truth: Path, pred: Path) -> list[tuple[Path, Path]]:
    """(truth CSV, prediction CSV) pairs: the two files, or the two directories' CSVs paired by file name."""
    if truth.is_dir() != pred.is_dir():
        raise BouldersegError(f"{truth} and {pred}: give two CSV files or two directories of them.")
    if not truth.is_dir():
        return [(truth, pred)]
    names = sorted(p.name for p in truth.glob("*.csv"))
    missing = [n for n in names if not (pred / n).exists()]
    if not names or missing:
        raise BouldersegError(f"{pred}: no prediction for {missing}" if missing else f"{truth}: no label CSV in it.")
    return [(truth / n, pred / n) for n in names]


def score_files(truth: Path, pred: Path, ignore: Sequence[str] = ()) -> dict:
    """Accuracy, per-class accuracy, Edit and F1@{10,25,50}, in percent, over every pair; frames whose
    truth is an ignored class are not scored and ignored labels form no segment in either file. A pair whose
    truth and prediction are all ignored is in no figure, listed under "not_scored" (one whose prediction has
    segments counts them as false positives); with nothing scored every figure is None."""
    labels, preds, videos, missing = [], [], [], []
    for t_path, p_path in pairs(truth, pred):
        t, p = read_labels(t_path), read_labels(p_path)
        if len(t) != len(p):
            raise BouldersegError(f"{t_path} has {len(t)} frames but {p_path} has {len(p)}: they must describe "
                                  "the same frames.")
        keep, predicted = ~np.isin(t, list(ignore)), ~np.isin(p, list(ignore))
        if not (keep.any() or predicted.any()):
            missing.append(t_path.name)
            continue
        labels.append(t[keep]), preds.append(p[keep])
        videos.append((segments(t, keep), segments(p, predicted)))
    labels, preds = (np.concatenate(labels), np.concatenate(preds)) if labels else ([], [])
    classes = sorted(set(labels) | set(preds))
    frames = frame_metrics(labels, preds, classes)
    return {"accuracy": frames["accuracy"]} | segment_metrics(videos) | {
        "per_class_accuracy": {c: v for c, v in frames["per_class_accuracy"].items() if v is not None},
        "videos": len(videos), "frames": frames["frames"]} | ({"not_scored": missing} if missing else {})
