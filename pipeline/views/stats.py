"""Dataset statistics from per-frame labels: how much of each class, how long, how often, in what order.

A *segment* is a maximal run of frames with one label. The *transcript* of a video is the
sequence of its segments' labels, leaving out segments of classes in `labels.drop` (neighbours
are not joined: climbing, [dropped], climbing is two climbing segments).

- imbalance ratio: frames of the largest class / frames of the smallest, over the classes a head
  is trained on that occur at all; 1 = balanced, higher = more imbalanced.
- repetition score of a video: 1 - u / g, with u its distinct classes and g its segments
  (transcript length); reported as mean ± std over videos. In [0, 1): 0 when no class occurs
  twice, higher the more segments repeat a class.
- order variation: the mean, over every pair of videos (x, y), of the Levenshtein distance
  between their transcripts divided by max(|x|, |y|). In [0, 1]: 0 when every video has the
  same transcript, higher the more the order of actions differs between videos.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.learning.metrics import mean_std


def runs(labels: Sequence[str]) -> list[tuple[str, int, int]]:
    """Maximal runs of equal labels as (label, first frame, end frame exclusive)."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((labels[start], start, i))
            start = i
    return out


def repetition_score(transcript: Sequence[str]) -> float | None:
    """1 - distinct / segments; None for an empty transcript."""
    return 1 - len(set(transcript)) / len(transcript) if transcript else None


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each costing 1."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def order_variation(transcripts: Sequence[Sequence[str]]) -> float | None:
    """Mean normalised edit distance over all pairs of non-empty transcripts; None below two."""
    pairs = list(itertools.combinations([t for t in transcripts if t], 2))
    if not pairs:
        return None
    return float(np.mean([edit_distance(x, y) / max(len(x), len(y)) for x, y in pairs]))


def temporal_distribution(videos: Mapping[str, Sequence[str]], classes: Sequence[str], *,
                          bins: int) -> dict[str, list[float]]:
    """Per class, its share of the frames in each of `bins` equal slices of normalised video time.

    Frame i of an N-frame video sits at (i + 0.5) / N; each slice's shares sum to 1 over classes.
    """
    index = {c: k for k, c in enumerate(classes)}
    counts = np.zeros((len(classes), bins))
    for labels in videos.values():
        n = len(labels)
        where = ((np.arange(n) + 0.5) / n * bins).astype(int)
        np.add.at(counts, ([index[c] for c in labels], where), 1)
    shares = counts / np.maximum(counts.sum(0, keepdims=True), 1)
    return {c: [round(float(s), 6) for s in shares[k]] for c, k in index.items()}


def dataset_stats(videos: Mapping[str, Sequence[str]], *, fps: float, classes: Sequence[str],
                  scope: Sequence[str], bins: int = 10) -> dict:
    """Statistics of per-frame label sequences; `scope`: the classes heads are trained on."""
    all_runs = {v: runs(labels) for v, labels in videos.items()}
    frames = {c: sum(labels.count(c) for labels in videos.values()) for c in classes}
    total = sum(frames.values())
    per_class = {}
    for c in classes:
        lengths = [(e - s) / fps for r in all_runs.values() for label, s, e in r if label == c]
        per_class[c] = {"frames": frames[c], "share": frames[c] / total if total else 0.0, "segments": len(lengths),
                        "mean_duration_s": float(np.mean(lengths)) if lengths else None,
                        "median_duration_s": float(np.median(lengths)) if lengths else None}
    transcripts = {v: [label for label, _, _ in r if label in scope] for v, r in all_runs.items()}
    present = [c for c in scope if frames[c]]
    largest = max(present, key=frames.get, default=None)
    smallest = min(present, key=frames.get, default=None)
    repetition = {v: repetition_score(t) for v, t in transcripts.items()}
    return {
        "videos": len(videos), "frames": total, "duration_s": total / fps, "scope": list(scope),
        "classes": per_class,
        "segments_per_video": mean_std([len(t) for t in transcripts.values()])
        | {"per_video": {v: len(t) for v, t in transcripts.items()}},
        "imbalance_ratio": frames[largest] / frames[smallest] if present else None,
        "imbalance": {"largest": largest, "smallest": smallest, "absent": [c for c in scope if not frames[c]]},
        "repetition_score": mean_std(list(repetition.values())) | {"per_video": repetition},
        "order_variation": order_variation(list(transcripts.values())),
        "temporal_distribution": {"bins": bins, "shares": temporal_distribution(videos, classes, bins=bins)},
    }
