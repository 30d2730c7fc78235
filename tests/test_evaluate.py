"""The evaluate stage on a predictions table: what it prints and titles when the person filter removed frames."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO
from stages import evaluate


def run(tmp_path, capsys, person: dict[str, list[bool]], min_person_fraction: float = 0.0) -> tuple[str, str, dict]:
    """Evaluate one row (pixels + linear), one fold per video of 8 frames; `person`: each video's person column."""
    tmp_path.mkdir(exist_ok=True)
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["features"]["backbones"] = {"pixels": ["pixels"]}
    p["train"].update(heads={"linear": p["train"]["heads"]["linear"]}, fusions=[],
                      min_person_fraction=min_person_fraction)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    labels = ["climbing"] * 4 + ["reading"] * 4
    table = pd.concat([pd.DataFrame({"backbone": "pixels", "head": "linear", "fold": k, "video": name,
                                     "frame": range(8), "label": labels, "pred": ["climbing"] * 8,
                                     "scored": person[name], "person": person[name], "chosen": "{}"})
                       for k, name in enumerate(sorted(person))], ignore_index=True)
    (tmp_path / "predictions" / "pixels").mkdir(parents=True)
    table.to_parquet(tmp_path / "predictions" / "pixels" / "linear.parquet")
    evaluate.main(tmp_path / "predictions", metrics_json=tmp_path / "metrics.json", plots_dir=tmp_path / "plots",
                  board=tmp_path / "board", params_file=tmp_path / "params.yaml")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    return capsys.readouterr().out, (tmp_path / "board.md").read_text(), metrics


def test_a_fold_the_person_filter_emptied_is_printed_and_listed_as_not_scored(tmp_path, capsys):
    out, board, metrics = run(tmp_path, capsys, {"a": [True] * 8, "b": [True] * 8, "c": [False] * 8})
    m = metrics["pixels"]["linear"]
    assert m["folds"][2]["accuracy"] is None and m["folds"][2]["edit"] is None  # not 0.0, not 100
    assert m["accuracy"] == {"mean": 50.0, "std": 0.0} and m["edit"]["mean"] == 50.0
    assert m["not_scored"] == {"videos": ["c"], "folds": [2]}
    assert "pixels + linear: frame accuracy 50.0 ± 0.0 % (mean over folds; 50.0 % pooled), Edit 50.0" in out
    assert "  not scored: c (nothing to score or predict" in out and "fold 2 scored nothing" in out
    assert "pixels + linear: Not scored: c (" in board
    # min_person_fraction is 0, but the person filter took c's frames out of scoring: the filter is on
    assert board.startswith("# Leaderboard — protocol: full: all 5 classes scored, person filter on (33.3 % of "
                            "frames removed)")


def test_nothing_scored_at_all_prints_not_scored_instead_of_failing(tmp_path, capsys):
    out, board, _ = run(tmp_path, capsys, {"a": [False] * 8, "b": [False] * 8})
    assert "pixels + linear: frame accuracy not scored (mean over folds; not scored pooled), Edit not scored" in out
    assert "protocol: full: all 5 classes scored, person filter on (100.0 % of frames removed)" in board


@pytest.mark.parametrize("fraction", [0.0, 0.5])
def test_the_title_follows_the_frames_removed_whatever_min_person_fraction(tmp_path, capsys, fraction):
    _, board, _ = run(tmp_path, capsys, {"a": [True] * 8, "b": [True] * 8}, fraction)
    assert "person filter off (it removed no frame)" in board
    _, board, _ = run(tmp_path / "again", capsys, {"a": [True] * 8, "b": [True] * 4 + [False] * 4}, fraction)
    assert "person filter on (25.0 % of frames removed)" in board
