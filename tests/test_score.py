"""`boulderseg score` end to end on label CSVs and directories of them, and `boulderseg heads`."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_cli import boulderseg

TRUTH = ["a"] * 10 + ["b"] * 10
FRAGMENTED = ["a", "a", "b", "a", "a", "b", "a", "a", "a", "a", "b", "b", "a", "b", "b", "a", "b", "b", "b", "b"]


def csv(path: Path, labels: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"frame": range(len(labels)), "label": labels}).to_csv(path, index=False)
    return path


def test_score_two_files_as_json(tmp_path):
    run = boulderseg("score", str(csv(tmp_path / "t.csv", TRUTH)), str(csv(tmp_path / "p.csv", FRAGMENTED)), "--json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["accuracy"] == 80.0 and s["edit"] == pytest.approx(20.0)
    assert s["f1@10"] == pytest.approx(100 / 3) and s["f1@25"] == pytest.approx(100 / 3) and s["f1@50"] == 0.0
    assert s["per_class_accuracy"] == {"a": 80.0, "b": 80.0}


def test_score_directories_pairs_by_name_and_ignores_a_class(tmp_path):
    csv(tmp_path / "truth" / "v1.csv", ["a", "a", "x", "x", "b"])
    csv(tmp_path / "pred" / "v1.csv", ["a", "a", "a", "b", "b"])
    csv(tmp_path / "truth" / "v2.csv", ["b", "b", "b"])
    csv(tmp_path / "pred" / "v2.csv", ["b", "b", "b"])
    run = boulderseg("score", "truth", "pred", "--ignore", "x", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "2 video(s), 6 scored frames" in run.stdout
    assert "  accuracy 100.00" in run.stdout and "     f1@50 100.00" in run.stdout and "      edit 100.00" in run.stdout


def test_a_video_with_nothing_to_score_or_predict_is_not_scored_and_named(tmp_path):
    csv(tmp_path / "truth" / "v1.csv", ["a", "a", "b", "b"])
    csv(tmp_path / "pred" / "v1.csv", ["a", "b", "b", "b"])  # Edit 100, accuracy 75, 2 segments found
    csv(tmp_path / "truth" / "v2.csv", ["x", "x", "x"])  # nothing to score, but a predicted segment: a false positive
    csv(tmp_path / "pred" / "v2.csv", ["a", "a", "a"])
    csv(tmp_path / "truth" / "v3.csv", ["x", "x", "x"])  # nothing either side: it used to add an Edit of 100
    csv(tmp_path / "pred" / "v3.csv", ["x", "x", "x"])
    run = boulderseg("score", "truth", "pred", "--ignore", "x", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["edit"] == 50.0 and s["accuracy"] == 75.0 and s["f1@50"] == pytest.approx(80.0)  # P 2/3, R 1
    assert s["videos"] == 2 and s["not_scored"] == ["v3.csv"]
    run = boulderseg("score", "truth/v3.csv", "pred/v3.csv", "--ignore", "x", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "not scored (every frame ignored in the truth and the prediction), in no figure: v3.csv" in run.stdout
    assert "  accuracy not scored" in run.stdout and "      edit not scored" in run.stdout


def test_score_refuses_a_length_mismatch_naming_both_files(tmp_path):
    run = boulderseg("score", str(csv(tmp_path / "t.csv", TRUTH)), str(csv(tmp_path / "p.csv", TRUTH[:-1])),
                     cwd=tmp_path)
    assert run.returncode == 1
    assert f"{tmp_path / 't.csv'} has 20 frames but {tmp_path / 'p.csv'} has 19" in run.stderr


def test_score_refuses_a_csv_without_labels_and_a_missing_prediction(tmp_path):
    (tmp_path / "bad.csv").write_text("frame,what\n0,a\n")
    run = boulderseg("score", "bad.csv", str(csv(tmp_path / "p.csv", ["a"])), cwd=tmp_path)
    assert run.returncode == 1 and "bad.csv: no column ['label']" in run.stderr
    csv(tmp_path / "truth" / "v1.csv", ["a"])
    (tmp_path / "pred").mkdir()
    run = boulderseg("score", "truth", "pred", cwd=tmp_path)
    assert run.returncode == 1 and "pred: no prediction for ['v1.csv']" in run.stderr


def test_heads_lists_the_registry(tmp_path):
    run = boulderseg("heads", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for name, kind in [("linear", "per-window"), ("mlp", "per-window"), ("lstm", "sequence"), ("bilstm", "sequence"),
                       ("mstcn", "sequence"), ("transformer", "sequence")]:
        assert any(line.split()[:2] == [name, kind] for line in lines), name
    assert "10.2k" in next(line for line in lines if line.startswith("linear"))  # 2048 * 5 + 5 parameters
