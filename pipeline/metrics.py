"""Frame-level metrics of cross-validated predictions, per fold and mean ± std over folds."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def confusion(labels: Sequence[str], preds: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    index = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(m, ([index[c] for c in labels], [index[c] for c in preds]), 1)
    return m


def frame_metrics(labels: Sequence[str], preds: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy over frames and per-class accuracy (recall); None for a class with no frames."""
    m = confusion(labels, preds, classes)
    support = m.sum(1)
    return {
        "accuracy": float(np.trace(m) / max(m.sum(), 1)),
        "per_class_accuracy": {c: (float(m[i, i] / support[i]) if support[i] else None)
                               for i, c in enumerate(classes)},
        "frames": int(m.sum()),
    }


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    """Mean and population std of the values that are not None."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals))}


def summarize(predictions: pd.DataFrame, classes: Sequence[str]) -> dict:
    """Per backbone and head: metrics of each fold, their mean ± std over folds, and accuracy pooled over all folds.

    {backbone: {head: {"accuracy": {mean, std}, "pooled_accuracy", "per_class_accuracy": {class: {mean, std}},
    "folds": [...]}}}. Only scored frames count (a person is in them and their class is not dropped).
    """
    scored = predictions[predictions["scored"]]
    out: dict = {}
    for (backbone, head), df in scored.groupby(["backbone", "head"], sort=True):
        folds = [frame_metrics(f["label"], f["pred"], classes) | {"fold": int(k)}
                 for k, f in df.groupby("fold", sort=True)]
        out.setdefault(backbone, {})[head] = {
            "accuracy": mean_std([f["accuracy"] for f in folds]),
            "pooled_accuracy": frame_metrics(df["label"], df["pred"], classes)["accuracy"],
            "per_class_accuracy": {c: mean_std([f["per_class_accuracy"][c] for f in folds]) for c in classes},
            "folds": folds,
        }
    return out
