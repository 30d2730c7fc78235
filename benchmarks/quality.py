"""Model quality on the committed sample: single rows, fusions, flow, logreg, pose smoothing and nested selection,
with the time each adds, in one fresh copy of the repository (committed files), no network.

    python benchmarks/quality.py [--smoothing one_euro,savgol] [--nested efficientnet_lite0,efficientnet_lite0+blazepose]

1. `boulderseg profile shipped`, plus the `flow` backbone and the fusions below; each group of stages timed on its own
   (`dvc repro --glob`), then `evaluate`: every backbone and fusion with every head (logreg included).
2. For each `--smoothing` setting: features.pose_smoothing set, blazepose's features and every row reading them redone.
3. `--nested ROWS`: train.select nested (pose smoothing back to none), only those rows retrained, timed.
Every table row: frame accuracy mean ± std over the 4 folds, per-class brushing, Edit and F1@50 (percent).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from kit import copy_repo, measured

from pipeline.learning.metrics import summarize

FUSIONS = [["efficientnet_lite0", "blazepose"], ["efficientnet_lite0", "flow"], ["blazepose", "flow"]]
CLASSES = ["climbing", "brushing", "reading", "stopwatch", "nothing"]


def repro(root: Path, env: dict, *targets: str) -> float:
    """Seconds of `dvc repro` of `targets` (glob patterns), network off."""
    seconds, _ = measured(["unshare", "-rn", "dvc", "repro", "--glob", *targets], cwd=root, env=env)
    return seconds


def edit_params(root: Path, edit) -> None:
    path = root / "params.yaml"
    p = yaml.safe_load(path.read_text())
    edit(p)
    path.write_text(yaml.safe_dump(p, sort_keys=False))


def table(root: Path, rows: list[str] | None = None) -> pd.DataFrame:
    """One line per backbone (or fusion) and head from the predictions the train stages wrote."""
    files = sorted((root / "reports" / "predictions").glob("*/*.parquet"))
    frames = pd.concat([pd.read_parquet(f) for f in files if rows is None or f.parent.name in rows], ignore_index=True)
    out = []
    for backbone, heads in summarize(frames, CLASSES).items():
        for head, m in heads.items():
            out.append({"row": f"{backbone} + {head}", "accuracy": m["accuracy"]["mean"], "std": m["accuracy"]["std"],
                        "brushing": m["per_class_accuracy"]["brushing"]["mean"], "edit": m["edit"]["mean"],
                        "f1@50": m["f1@50"]["mean"],
                        "chosen": "; ".join(str(f.get("chosen", {}).get("epochs", f.get("chosen", {}).get("C", "")))
                                            for f in m["folds"])})
    return pd.DataFrame(out).sort_values("accuracy", ascending=False)


def show(title: str, t: pd.DataFrame) -> None:
    print(f"\n## {title}\n")
    print(t.to_markdown(index=False, floatfmt=".1f"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoothing", default="one_euro,savgol")
    parser.add_argument("--nested", default="efficientnet_lite0,efficientnet_lite0+blazepose")
    parser.add_argument("--keep", type=Path, help="run in this folder (kept) instead of a temporary one")
    args = parser.parse_args()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "DVC_NO_ANALYTICS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(args.keep or Path(tmp) / "repo")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["boulderseg", "profile", "shipped"], cwd=root, env=env, check=True, capture_output=True)
        edit_params(root, lambda p: (p["features"]["backbones"].update(flow=["flow"]),
                                     p["train"].update(fusions=FUSIONS)))
        times = {"frames, persons, labels, folds": repro(root, env, "persons@*", "folds", "stats")}
        for family in ("efficientnet", "mediapipe", "pixels", "flow"):
            times[f"features-{family}"] = repro(root, env, f"features-{family}@*")
        times["single rows, Adam heads"] = repro(root, env, *(f"train-{f}@*-{h}" for f in
                                                 ("efficientnet", "mediapipe", "pixels", "flow")
                                                 for h in ("linear", "mlp", "lstm", "bilstm", "mstcn", "transformer")))
        times["single rows, logreg"] = repro(root, env, "train-*@*-logreg")
        times["fusion rows (3 pairs x 7 heads)"] = repro(root, env, "train-fusion@*")
        times["evaluate"] = repro(root, env, "evaluate")
        show("shipped profile + flow + fusions (train.select none)", table(root))
        for setting in filter(None, args.smoothing.split(",")):
            edit_params(root, lambda p: p["features"].update(pose_smoothing=setting))
            times[f"features-mediapipe, pose_smoothing {setting}"] = repro(root, env, "features-mediapipe@*")
            times[f"rows reading blazepose, {setting}"] = repro(root, env, "train-*")
            show(f"pose_smoothing {setting}: the rows that read blazepose",
                 table(root, ["blazepose", *("+".join(f) for f in FUSIONS if "blazepose" in f)]))
        rows = list(filter(None, args.nested.split(",")))
        if rows:
            edit_params(root, lambda p: (p["features"].update(pose_smoothing="none"), p["train"].update(select="nested")))
            repro(root, env, "features-mediapipe@*")
            pairs = {"+".join(f): f"fusion{i}" for i, f in enumerate(FUSIONS)}
            families = {"efficientnet_lite0": "efficientnet", "blazepose": "mediapipe", "pixels": "pixels", "flow": "flow"}
            targets = [f"train-fusion@{pairs[r]}-*" if r in pairs else f"train-{families[r]}@{r}-*" for r in rows]
            times[f"nested selection of {', '.join(rows)}"] = repro(root, env, *targets)
            show("train.select nested (chosen per fold)", table(root, rows))
        print("\n## Time (s)\n")
        print(pd.Series(times).round(1).to_markdown(), flush=True)


if __name__ == "__main__":
    main()
