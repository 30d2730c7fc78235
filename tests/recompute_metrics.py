"""Recompute the leaderboard's figures from the raw predictions alone, independently of `pipeline.learning.metrics`.

    python tests/recompute_metrics.py reports/predictions reports/metrics.json

Reads every `<backbone>/<head>.parquet` and, from the definitions written afresh (frame accuracy, per-class
accuracy and macro-F1 over the scored frames; MS-TCN's segments: runs of one label, background forming none,
Edit averaged over videos, F1@k from TP/FP/FN summed over a fold's videos), prints the largest difference of
any mean or std from metrics.json. Background: in the truth, frames not `scored`;
in the prediction, frames the person filter removed. Accuracy: the `scored` frames. ± : sample std.
A video without a scored frame, and a fold without one, count in no figure.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pandas as pd


def runs(labels: list, keep: list[bool]) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    previous = None
    for i, (label, k) in enumerate(zip(labels, keep)):
        if k and previous is not None and previous[0] == label and previous[2] == i:
            previous = (label, previous[1], i + 1)
            out[-1] = previous
        elif k:
            previous = (label, i, i + 1)
            out.append(previous)
    return out


def levenshtein(a: list, b: list) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def hits(truth: list, pred: list, k: float) -> tuple[int, int, int]:
    used, tp = set(), 0
    for label, s, e in pred:
        ious = [((min(e, te) - max(s, ts)) / (max(e, te) - min(s, ts)) if tl == label else 0.0, n)
                for n, (tl, ts, te) in enumerate(truth)]
        best, n = max(ious, key=lambda x: (x[0], -x[1])) if ious else (0.0, -1)
        if n >= 0 and best >= k and n not in used:
            used.add(n)
            tp += 1
    return tp, len(pred) - tp, len(truth) - tp


def fold_scores(df: pd.DataFrame) -> dict[str, float]:
    scored = df[df["scored"]]
    if scored.empty:  # a fold with nothing scored has no figure
        return {}
    out = {"accuracy": 100 * (scored["label"] == scored["pred"]).mean()}
    f1s = []
    for c in sorted(set(scored["label"]) | set(scored["pred"])):
        truth, pred = scored["label"] == c, scored["pred"] == c
        if truth.any():
            out[f"class:{c}"] = 100 * (truth & pred).sum() / truth.sum()
        f1s.append(2 * (truth & pred).sum() / (truth.sum() + pred.sum()))
    out["macro_f1"] = 100 * sum(f1s) / len(f1s)
    edits, counts = [], {k: [0, 0, 0] for k in (10, 25, 50)}
    for _, v in df.sort_values("frame").groupby("video"):
        if not (v["scored"].any() or v["person"].any()):  # nothing to score or predict: not scored
            continue
        truth = runs(v["label"].tolist(), v["scored"].tolist())
        pred = runs(v["pred"].tolist(), v["person"].tolist())
        longest = max(len(truth), len(pred))
        edits.append(100.0 if not longest else 100 * (1 - levenshtein([t[0] for t in truth], [p[0] for p in pred]) / longest))
        for k in counts:
            counts[k] = [a + b for a, b in zip(counts[k], hits(truth, pred, k / 100))]
    out["edit"] = sum(edits) / len(edits)
    for k, (tp, fp, fn) in counts.items():
        out[f"f1@{k}"] = 0.0 if not tp else 100 * 2 * tp / (2 * tp + fp + fn)
    return out


def largest_difference(predictions: Path, metrics: Path) -> float:
    reported, worst = json.loads(metrics.read_text()), 0.0
    for path in sorted(predictions.glob("*/*.parquet")):
        df = pd.read_parquet(path)
        backbone, head = path.parent.name, path.stem
        folds = [fold_scores(f) for _, f in df.groupby("fold")]
        row = reported[backbone][head]
        keys = ["accuracy", "macro_f1", "edit", "f1@10", "f1@25", "f1@50",
                *(f"class:{c}" for c in row["per_class_accuracy"])]
        for key in keys:
            values = [f[key] for f in folds if key in f]
            cell = row["per_class_accuracy"][key[6:]] if key.startswith("class:") else row[key]
            if not values:
                assert cell["mean"] is None, (path, key)
                continue
            mine = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else None}
            for part in ("mean", "std"):
                if mine[part] is None or cell[part] is None:
                    assert mine[part] is cell[part], (path, key, part)
                else:
                    worst = max(worst, abs(mine[part] - cell[part]))
    return worst


if __name__ == "__main__":
    print(f"largest difference: {largest_difference(Path(sys.argv[1]), Path(sys.argv[2])):.6f}")
