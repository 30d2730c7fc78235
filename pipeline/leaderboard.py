"""The leaderboard: every backbone × head row of the metrics, laid out as the paper's Table 3, plus segment metrics."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.atomic import atomic_output

PER_CLASS = ("brushing", "reading", "climbing")  # Table 3's per-class columns
COLUMNS = ("accuracy", *PER_CLASS, "macro_f1", "edit", "f1@10", "f1@25", "f1@50")
# Kichou et al., "Bouldering Video Segmentation", Table 3 (their protocol). Only the figure this
# project's brief quotes is entered; the table's other cells are to be copied from the paper, not guessed.
PAPER_ROWS = ({"backbone": "r3d", "head": "lstm", "accuracy": 86.8},)


def protocol(drop: Sequence[str], min_person_fraction: float) -> str:
    """Which evaluation protocol the metrics follow, in words."""
    if set(drop) == {"stopwatch", "nothing"} and min_person_fraction > 0:
        return "the paper's: stopwatch and nothing dropped, person filter on"
    dropped = f"{', '.join(drop)} dropped" if drop else "all 5 classes scored"
    return f"{'full' if not drop else 'custom'}: {dropped}, person filter {'on' if min_person_fraction > 0 else 'off'}"


def rows(metrics: dict) -> pd.DataFrame:
    """One row per backbone × head: mean over folds of every column (percent), and the accuracy's std."""
    out = []
    for backbone, heads in metrics.items():
        for head, m in heads.items():
            row = {"backbone": backbone, "head": head, "source": "boulderseg", "accuracy_std": m["accuracy"]["std"]}
            row |= {c: m["per_class_accuracy"].get(c, {}).get("mean") if c in PER_CLASS else m[c]["mean"]
                    for c in COLUMNS}
            out.append(row)
    return pd.DataFrame(out, columns=["backbone", "head", "source", *COLUMNS, "accuracy_std"])


def markdown(table: pd.DataFrame, title: str) -> str:
    """The rows as a Markdown table; the best of ours in each column in bold; the paper's rows below, labelled."""
    best = {c: table[c].max() for c in COLUMNS}
    lines = [f"# Leaderboard — protocol: {title}", "",
             "Percent, mean over cross-validation folds (accuracy ± std over folds). Bold: best of ours.", "",
             "| backbone | head | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    for _, r in table.sort_values(["backbone", "head"]).iterrows():
        cells = []
        for c in COLUMNS:
            v = r[c]
            text = "—" if pd.isna(v) else f"{v:.1f}" + (f" ± {r['accuracy_std']:.1f}" if c == "accuracy" else "")
            cells.append(f"**{text}**" if not pd.isna(v) and v == best[c] else text)
        lines.append(f"| {r['backbone']} | {r['head']} | " + " | ".join(cells) + " |")
    for p in PAPER_ROWS:
        cells = ["—" if c not in p else f"{p[c]:.1f}" for c in COLUMNS]
        lines.append(f"| {p['backbone']} (paper) | {p['head']} (paper) | " + " | ".join(cells) + " |")
    lines += ["", "Rows marked (paper) are Kichou et al.'s Table 3, on their data and protocol, for reference."]
    return "\n".join(lines) + "\n"


def write(metrics: dict, *, title: str, md_path: str | Path, csv_path: str | Path) -> pd.DataFrame:
    table = rows(metrics)
    paper = pd.DataFrame([p | {"source": "paper (Kichou et al., Table 3)"} for p in PAPER_ROWS])
    with atomic_output(csv_path) as tmp:
        pd.concat([table, paper], ignore_index=True).assign(protocol=title).to_csv(tmp, index=False,
                                                                                    float_format="%.2f")
    with atomic_output(md_path) as tmp:
        tmp.write_text(markdown(table, title))
    return table
