"""Pictures people would rather look at than read: confusion matrices and per-video timelines."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_output
from pipeline.learning.metrics import confusion, shown


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def models(predictions: pd.DataFrame) -> list[tuple[str, str]]:
    """(backbone, head) pairs of a predictions table, sorted."""
    return sorted(predictions[["backbone", "head"]].drop_duplicates().itertuples(index=False, name=None))


def plot_confusions(predictions: pd.DataFrame, classes: Sequence[str], metrics: dict, out_dir: str | Path) -> None:
    """`out_dir/<backbone>/<head>.png`: the row-normalised confusion matrix of every leaderboard row over
    all folds' scored frames, titled with both accuracies of `metrics` (pipeline.learning.metrics.summarize)."""
    plt = _pyplot()
    scored = predictions[predictions["scored"]]
    for backbone, head in models(scored):
        df = scored[(scored["backbone"] == backbone) & (scored["head"] == head)]
        m = confusion(df["label"], df["pred"], classes).astype(float)
        m /= np.maximum(m.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(4.6, 4.3))
        ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.5 else "black")
        score = metrics[backbone][head]
        mean, pooled = shown(score["accuracy"]["mean"], score["accuracy"]["std"], " %"), shown(score["pooled_accuracy"])
        ax.set(title=f"{backbone} + {head}\naccuracy: fold mean {mean}, pooled {pooled} %",
               xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true")
        ax.title.set_fontsize(9)
        ax.set_xticklabels(classes, rotation=45, ha="right")
        ax.set_yticklabels(classes)
        fig.tight_layout()
        (Path(out_dir) / backbone).mkdir(parents=True, exist_ok=True)
        _save(fig, Path(out_dir) / backbone / f"{head}.png")


def plot_timelines(predictions: pd.DataFrame, classes: Sequence[str], out_png: str | Path) -> None:
    """For every video: the true labels and each backbone + head's predictions as coloured bands over time."""
    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    videos, pairs = sorted(predictions["video"].unique()), models(predictions)
    index = {c: i for i, c in enumerate(classes)}
    rows = ["truth", *[f"{b} + {h}" for b, h in pairs]]
    fig, axes = plt.subplots(len(videos), 1, figsize=(10, 0.35 * len(rows) * len(videos) + 1), squeeze=False)
    for ax, video in zip(axes[:, 0], videos):
        df = predictions[predictions["video"] == video]
        of = {pair: df[(df["backbone"] == pair[0]) & (df["head"] == pair[1])] for pair in pairs}
        bands = [of[pairs[0]]["label"]] + [of[pair]["pred"] for pair in pairs]
        image = np.stack([[index[c] for c in b] for b in bands])  # (rows, N)
        ax.imshow(image, aspect="auto", interpolation="nearest", cmap=colours, vmin=0, vmax=9)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_title(video, fontsize=9, loc="left")
        ax.set_xlabel("frame")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i)) for i in range(len(classes))]
    fig.legend(handles, classes, loc="upper center", ncol=len(classes), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _save(fig, out_png)


def _save(fig, out_png: str | Path) -> None:
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    _pyplot().close(fig)


def plot_class_distribution(stats: dict, out_png: str | Path) -> None:
    """Share of frames and mean segment duration of each class (dataset_stats output)."""
    plt = _pyplot()
    classes = list(stats["classes"])
    per = stats["classes"]
    colours = [plt.get_cmap("tab10")(i) for i in range(len(classes))]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.bar(classes, [100 * per[c]["share"] for c in classes], color=colours)
    left.set(ylabel="% of frames", title=f"class share (imbalance ratio {fmt(stats['imbalance_ratio'])})")
    right.bar(classes, [per[c]["mean_duration_s"] or 0 for c in classes], color=colours)
    right.set(ylabel="seconds", title="mean segment duration")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    _save(fig, out_png)


def plot_temporal_distribution(stats: dict, out_png: str | Path) -> None:
    """Each class's share of frames across normalised video time (0 = start, 1 = end), stacked."""
    plt = _pyplot()
    shares = stats["temporal_distribution"]["shares"]
    bins = stats["temporal_distribution"]["bins"]
    edges = np.arange(bins + 1) / bins
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.stackplot(edges, *[[*v, v[-1]] for v in shares.values()], labels=list(shares),  # last value closes the step
                 colors=plt.get_cmap("tab10").colors[:len(shares)], step="post")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="normalised video time", ylabel="share of frames",
           title="when each class happens")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.tight_layout()
    _save(fig, out_png)


def plot_rows(title: str, rows: Mapping[str, Sequence[str]], classes: Sequence[str], *, fps: float,
              out_png: str | Path, person: Sequence[bool] | None = None) -> None:
    """Aligned bands over time in seconds: one per row of per-frame class labels (truth, each head's
    prediction) and, with `person`, one that is dark where a person is in frame."""
    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    index = {c: i for i, c in enumerate(classes)}
    names = [*rows, *(["person in frame"] if person is not None else [])]
    n = len(next(iter(rows.values())))
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 0.5 * len(names) + 1.2), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        if name in rows:
            image, kw = [[index[c] for c in rows[name]]], {"cmap": colours, "vmin": 0, "vmax": 9}
        else:
            image, kw = [np.asarray(person, float)], {"cmap": "Greys", "vmin": -0.3, "vmax": 1.3}
        ax.imshow(image, aspect="auto", interpolation="nearest", extent=(0, n / fps, 0, 1), **kw)
        ax.set_yticks([0.5], [name])
    axes[-1, 0].set_xlabel("seconds")
    axes[0, 0].set_title(title, loc="left", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i)) for i in range(len(classes))]
    fig.legend(handles, classes, loc="upper right", ncol=len(classes), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    _save(fig, out_png)


def fmt(value: float | None) -> str:
    """A statistic to two decimals, or n/a when it is undefined."""
    return "n/a" if value is None else f"{value:.2f}"
