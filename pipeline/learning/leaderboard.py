"""The leaderboard: every backbone × head row of the metrics, laid out as the paper's Table 3, plus segment metrics,
with the paper's whole Table 3 below."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.core.atomic import atomic_output
from pipeline.learning.metrics import not_scored_note

PER_CLASS = ("brushing", "reading", "climbing")  # Table 3's per-class columns
COLUMNS = ("accuracy", *PER_CLASS, "macro_f1", "edit", "f1@10", "f1@25", "f1@50")
WITH_STD = ("accuracy", *PER_CLASS)  # printed as mean ± std
# Kichou et al., "Bouldering Video Segmentation", Table 3, every cell (their data and protocol: stopwatch and
# nothing dropped, person filter on); the paper's names -> ours. Its "MLP" is one linear layer: our `linear`.
PAPER_TABLE = Path(__file__).with_name("paper_table3.csv")
PAPER_NAMES = {"yolo": "yolo_pose", "dino": "dinov2_vits14", "clip": "clip_vit_b32", "r3d": "r3d", "i3d": "i3d",
               "x3d-xs": "x3d_xs", "x3d-s": "x3d_s", "x3d-m": "x3d_m", "x3d-l": "x3d_l", "s3d-k": "s3d_k",
               "s3d-h": "s3d_h", "slowfast": "slowfast_r50", "vivit": "vivit"}
PAPER_HEADS = {"mlp": "linear", "lstm": "lstm"}
PAPER_SOURCE = "paper (Kichou et al., Table 3)"


def paper_rows() -> pd.DataFrame:
    """Every cell of the paper's Table 3, one row per backbone x head, in the leaderboard's columns."""
    table, out = pd.read_csv(PAPER_TABLE), []
    for _, r in table.iterrows():
        for theirs, ours in PAPER_HEADS.items():
            row = {"backbone": PAPER_NAMES[r["backbone"]], "head": ours, "source": PAPER_SOURCE}
            row |= {c: r[f"{theirs}_{c}"] for c in WITH_STD} | {f"{c}_std": r[f"{theirs}_{c}_std"] for c in WITH_STD}
            out.append(row)
    return pd.DataFrame(out)


def protocol(drop: Sequence[str], removed: float) -> str:
    """Which evaluation protocol the metrics follow, in words. `removed`: the share of frames the person filter took
    out of scoring (the predictions' `person` column; train.min_person_fraction only picks the training windows)."""
    if set(drop) == {"stopwatch", "nothing"} and removed > 0:
        return "the paper's: stopwatch and nothing dropped, person filter on"
    dropped = f"{', '.join(drop)} dropped" if drop else "all 5 classes scored"
    person = f"person filter on ({100 * removed:.1f} % of frames removed)" if removed > 0 else \
        "person filter off (it removed no frame)"
    return f"{'full' if not drop else 'custom'}: {dropped}, {person}"


def rows(metrics: dict) -> pd.DataFrame:
    """One row per backbone × head: mean over folds of every column (percent), and the std of accuracy and per class."""
    out = []
    for backbone, heads in metrics.items():
        for head, m in heads.items():
            row = {"backbone": backbone, "head": head, "source": "boulderseg"}
            for c in COLUMNS:
                cell = m["per_class_accuracy"].get(c, {}) if c in PER_CLASS else m[c]
                row[c] = cell.get("mean")
                if c in WITH_STD:
                    row[f"{c}_std"] = cell.get("std")
            out.append(row)
    return pd.DataFrame(out, columns=["backbone", "head", "source", *COLUMNS, *(f"{c}_std" for c in WITH_STD)])


def _cells(r: pd.Series, best: dict | None) -> list[str]:
    cells = []
    for c in COLUMNS:
        v = r.get(c)
        if pd.isna(v):
            cells.append("—")
            continue
        std = r.get(f"{c}_std")
        text = f"{v:.1f}" + (f" ± {std:.1f}" if c in WITH_STD and not pd.isna(std) else "")
        cells.append(f"**{text}**" if best is not None and v == best[c] else text)
    return cells


def markdown(table: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    """Our rows as a Markdown table, the best of ours in each column in bold; the paper's whole Table 3 below,
    labelled, in the same columns; `notes` (what a row left unscored) above it."""
    best = {c: table[c].max() for c in COLUMNS}
    lines = [f"# Leaderboard — protocol: {title}", "",
             "Percent, mean ± sample std over cross-validation folds. Bold: best of ours.", "",
             *[line for note in notes for line in (note, "")],
             "| backbone | head | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    for _, r in table.sort_values(["backbone", "head"]).iterrows():
        lines.append(f"| {r['backbone']} | {r['head']} | " + " | ".join(_cells(r, best)) + " |")
    for _, r in paper_rows().iterrows():
        head = "linear (paper's MLP)" if r["head"] == "linear" else f"{r['head']} (paper)"
        lines.append(f"| {r['backbone']} (paper) | {head} | " + " | ".join(_cells(r, None)) + " |")
    lines += ["", "Rows marked (paper) are every cell of Kichou et al.'s Table 3, on their data and protocol "
              "(stopwatch and nothing dropped, person filter on, 3 classes), for reference; — where it reports none."]
    return "\n".join(lines) + "\n"


def unscored_notes(metrics: dict) -> list[str]:
    """What each row left unscored, in words (`metrics.not_scored_note`), rows with the same note named together."""
    by_note: dict[str, list[str]] = {}
    for backbone, heads in metrics.items():
        for head, m in heads.items():
            note = not_scored_note(m)
            if note:
                by_note.setdefault(note, []).append(f"{backbone} + {head}")
    return [f"{', '.join(names)}: {note[0].upper()}{note[1:]}." for note, names in by_note.items()]


def write(metrics: dict, *, title: str, md_path: str | Path, csv_path: str | Path) -> pd.DataFrame:
    table = rows(metrics)
    with atomic_output(csv_path) as tmp:
        pd.concat([table.assign(protocol=title),
                   paper_rows().assign(protocol="the paper's: stopwatch and nothing dropped, person filter on")],
                  ignore_index=True).to_csv(tmp, index=False, float_format="%.2f")
    with atomic_output(md_path) as tmp:
        tmp.write_text(markdown(table, title, unscored_notes(metrics)))
    return table
