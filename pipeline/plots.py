"""Pictures people would rather look at than read: confusion matrices and per-video timelines."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import atomic_output
from pipeline.metrics import confusion


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusions(predictions: pd.DataFrame, classes: Sequence[str], out_png: str | Path) -> None:
    """Row-normalised confusion matrix of every head, side by side, over all folds' kept frames."""
    plt = _pyplot()
    scored = predictions[predictions["keep"]]
    heads = sorted(scored["head"].unique())
    fig, axes = plt.subplots(1, len(heads), figsize=(4.2 * len(heads), 4), squeeze=False)
    for ax, head in zip(axes[0], heads):
        df = scored[scored["head"] == head]
        m = confusion(df["label"], df["pred"], classes).astype(float)
        m /= np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.5 else "black")
        ax.set(title=f"{head} (frame acc {np.mean(df['label'] == df['pred']):.3f})",
               xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true")
        ax.set_xticklabels(classes, rotation=45, ha="right")
        ax.set_yticklabels(classes)
    fig.tight_layout()
    _save(fig, out_png)


def plot_timelines(predictions: pd.DataFrame, classes: Sequence[str], out_png: str | Path) -> None:
    """For every video: the true labels and each head's predictions as coloured bands over time."""
    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    videos, heads = sorted(predictions["video"].unique()), sorted(predictions["head"].unique())
    index = {c: i for i, c in enumerate(classes)}
    rows = ["truth", *heads]
    fig, axes = plt.subplots(len(videos), 1, figsize=(10, 0.35 * len(rows) * len(videos) + 1), squeeze=False)
    for ax, video in zip(axes[:, 0], videos):
        df = predictions[predictions["video"] == video]
        bands = [df[df["head"] == heads[0]]["label"]] + [df[df["head"] == h]["pred"] for h in heads]
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
