"""Metrics of frame predictions: the frame-wise ones and the temporal-segmentation ones of MS-TCN.

Scores are percentages, as the field prints them. Segments are maximal runs of one label, as in
MS-TCN's evaluation, with background forming none. The truth's background is every frame that does
not count (its class is dropped, or the person filter removed it); the prediction's background is only
what the pipeline itself knows at inference, the frames the person filter removed, so a prediction is
never cut at a boundary of the truth. Frame accuracy counts the frames that count. A video none of whose frames
counts is not scored: it is in no figure (its Edit would be 100 for two empty segment lists); a fold with no
scored video has None for every figure and is left out of the means. ± is the sample standard deviation over
folds (ddof 1).
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

OVERLAPS = (0.10, 0.25, 0.50)  # F1@10, F1@25, F1@50


def confusion(labels: Sequence[str], preds: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    index = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(m, ([index[c] for c in labels], [index[c] for c in preds]), 1)
    return m


def frame_metrics(labels: Sequence[str], preds: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy (None for no frames), per-class accuracy (recall; None for a class with no frames) and macro-F1
    over the classes that occur in the truth or the prediction, all in percent."""
    m = confusion(labels, preds, classes)
    support, predicted, hit = m.sum(1), m.sum(0), np.diag(m)
    present = (support + predicted) > 0
    f1 = 2 * hit[present] / (support[present] + predicted[present])
    return {
        "accuracy": 100 * float(hit.sum() / m.sum()) if m.sum() else None,
        "per_class_accuracy": {c: (100 * float(hit[i] / support[i]) if support[i] else None)
                               for i, c in enumerate(classes)},
        "macro_f1": 100 * float(f1.mean()) if len(f1) else None,
        "frames": int(m.sum()),
    }


def segments(labels: Sequence, counts: Sequence[bool] | None = None) -> list[tuple[object, int, int]]:
    """(label, start, end) of each maximal run of one label, end exclusive; frames where `counts` is
    False are background and belong to no segment."""
    labels = np.asarray(labels, dtype=object)
    counts = np.ones(len(labels), bool) if counts is None else np.asarray(counts, bool)
    out: list[tuple[object, int, int]] = []
    for i, (label, c) in enumerate(zip(labels, counts)):
        if not c:
            continue
        if out and out[-1][2] == i and out[-1][0] == label:
            out[-1] = (label, out[-1][1], i + 1)
        else:
            out.append((label, i, i + 1))
    return out


def edit_score(truth: Sequence, pred: Sequence) -> float:
    """100 × (1 − Levenshtein distance of the two segment label sequences / the longer length); 100 if both empty."""
    t, p = [s[0] for s in truth], [s[0] for s in pred]
    if not t and not p:
        return 100.0
    d = np.arange(len(p) + 1, dtype=np.int64)  # distances of the empty truth prefix to each pred prefix
    for i, a in enumerate(t, 1):
        prev, d[0] = d.copy(), i
        for j, b in enumerate(p, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (a != b))
    return 100 * (1 - d[-1] / max(len(t), len(p)))


def overlap_counts(truth: Sequence, pred: Sequence, overlap: float) -> tuple[int, int, int]:
    """(TP, FP, FN) at IoU ≥ `overlap`: each predicted segment, in time order, takes the same-label
    true segment it overlaps most; a hit only if that IoU is enough and the true segment is still free."""
    taken = np.zeros(len(truth), bool)
    tp = 0
    for label, s, e in pred:
        iou = np.array([(min(e, te) - max(s, ts)) / (max(e, te) - min(s, ts)) if tl == label else 0.0
                        for tl, ts, te in truth])
        best = int(iou.argmax()) if len(iou) else -1
        if best >= 0 and iou[best] >= overlap and not taken[best]:
            taken[best], tp = True, tp + 1
    return tp, len(pred) - tp, len(truth) - tp


def segment_metrics(videos: Sequence[tuple[list, list]]) -> dict[str, float | None]:
    """Edit (mean over videos) and F1@{10,25,50} (TP/FP/FN summed over videos) of (truth, pred) segment lists;
    all None for no video."""
    if not videos:
        return {"edit": None} | {f"f1@{round(k * 100)}": None for k in OVERLAPS}
    out = {"edit": float(np.mean([edit_score(t, p) for t, p in videos]))}
    for k in OVERLAPS:
        tp, fp, fn = np.sum([overlap_counts(t, p, k) for t, p in videos], axis=0)
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        out[f"f1@{round(k * 100)}"] = 100 * float(2 * precision * recall / (precision + recall)) if tp else 0.0
    return out


def score(predictions: pd.DataFrame, classes: Sequence[str]) -> dict:
    """Frame and segment metrics of one set of videos (columns video, frame, label, pred, scored, person).

    Frame metrics: the `scored` frames. Segments: the truth's over the `scored` frames; the prediction's over
    the `person` frames (the person filter's decision, known at inference), never over the truth's. A video with
    neither a scored frame nor a predicted segment (the person filter removed every frame) is in no figure and
    listed as "not_scored" (one with predicted segments only counts them as false positives); with none
    scored every figure is None."""
    scored = predictions[predictions["scored"]]
    by_video = list(predictions.sort_values(["video", "frame"]).groupby("video", sort=True))
    videos = [(segments(df["label"], df["scored"]), segments(df["pred"], df["person"]))
              for _, df in by_video if df["scored"].any() or df["person"].any()]
    missing = [str(name) for name, df in by_video if not (df["scored"].any() or df["person"].any())]
    return (frame_metrics(scored["label"], scored["pred"], classes) | segment_metrics(videos)
            | ({"not_scored": missing} if missing else {}))


SPREAD = "sample standard deviation over folds (ddof 1)"  # what every `std` here is


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    """Mean and sample std (ddof 1) of the values that are not None; std None for fewer than two."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None}


SCALARS = ("accuracy", "macro_f1", "edit", "f1@10", "f1@25", "f1@50")


def shown(value: float | None, std: float | None = None, unit: str = "") -> str:
    """A figure as printed: "not scored" for None, else one decimal with its ± std where there is one."""
    if value is None:
        return "not scored"
    return f"{value:.1f}" + (f" ± {std:.1f}" if std is not None else "") + unit


def not_scored_note(summary: dict) -> str | None:
    """In words, what `summarize` left out of one backbone × head's figures (its "not_scored"), or None."""
    if "not_scored" not in summary:
        return None
    videos, folds = summary["not_scored"]["videos"], summary["not_scored"]["folds"]
    return (f"not scored: {', '.join(videos)} (nothing to score or predict: the person filter removed every frame, "
            "or every frame's class is dropped there)" + (f"; fold {', '.join(map(str, folds))} scored nothing" if folds else "")
            + "; in no figure or mean")


def chosen(fold: pd.DataFrame) -> dict:
    """{"chosen": what the fold chose on its own training videos (logreg's C, nested selection's epochs)}, if anything."""
    made = json.loads(fold["chosen"].iloc[0]) if "chosen" in fold else {}
    return {"chosen": made} if made else {}


def summarize(predictions: pd.DataFrame, classes: Sequence[str]) -> dict:
    """Per backbone and head: the metrics of each fold, their mean ± std over folds, frame accuracy
    pooled over all folds and the pooled confusion matrix (rows true, columns predicted: `classes`).

    {backbone: {head: {"accuracy": {mean, std}, "macro_f1", "edit", "f1@10", "f1@25", "f1@50": {mean, std},
    "per_class_accuracy": {class: {mean, std}}, "pooled_accuracy", "confusion", "std": what std is,
    "folds": [{the fold's metrics, "fold", "chosen" where it chose something, "not_scored" where a video was not}],
    and where any video was not scored, "not_scored": {"videos": those, "folds": the folds that scored nothing}}}}.
    A figure nothing was scored for is None; means and stds are over the folds that have it.
    """
    out: dict = {}
    for (backbone, head), df in predictions.groupby(["backbone", "head"], sort=True):
        folds = [score(f, classes) | {"fold": int(k)} | chosen(f) for k, f in df.groupby("fold", sort=True)]
        scored = df[df["scored"]]
        missing = {"videos": sorted(v for f in folds for v in f.get("not_scored", [])),
                   "folds": [f["fold"] for f in folds if f["accuracy"] is None]}
        out.setdefault(backbone, {})[head] = {k: mean_std([f[k] for f in folds]) for k in SCALARS} | {
            "per_class_accuracy": {c: mean_std([f["per_class_accuracy"][c] for f in folds]) for c in classes},
            "pooled_accuracy": frame_metrics(scored["label"], scored["pred"], classes)["accuracy"],
            "confusion": confusion(scored["label"], scored["pred"], classes).tolist(),
            "std": SPREAD,
            "folds": folds,
        } | ({"not_scored": missing} if missing["videos"] else {})
    return out
