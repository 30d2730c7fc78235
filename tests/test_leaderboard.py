"""The leaderboard: our rows as the paper's Table 3 lays them out, and every cell of that table below them."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.learning import leaderboard

TABLE3 = pd.read_csv(leaderboard.PAPER_TABLE)


def metrics_row(accuracy: float) -> dict:
    cell = {"mean": accuracy, "std": 1.25}
    return {k: cell for k in ("accuracy", "macro_f1", "edit", "f1@10", "f1@25", "f1@50")} | {
        "per_class_accuracy": {"brushing": cell, "reading": cell, "climbing": cell}}


def test_every_cell_of_the_papers_table3_is_in_the_csv_with_its_source(tmp_path):
    leaderboard.write({"x3d_xs": {"mlp": metrics_row(70.0)}}, title="t", md_path=tmp_path / "b.md",
                      csv_path=tmp_path / "b.csv")
    board = pd.read_csv(tmp_path / "b.csv")
    assert board["source"].value_counts().to_dict() == {"paper (Kichou et al., Table 3)": 26, "boulderseg": 1}
    paper = board[board["source"] != "boulderseg"].set_index(["backbone", "head"])
    for _, r in TABLE3.iterrows():
        ours = leaderboard.PAPER_NAMES[r["backbone"]]
        for theirs, head in (("mlp", "linear"), ("lstm", "lstm")):
            for c in ("accuracy", "brushing", "reading", "climbing"):
                assert paper.loc[(ours, head), c] == r[f"{theirs}_{c}"]
                assert paper.loc[(ours, head), f"{c}_std"] == r[f"{theirs}_{c}_std"]
    assert set(board[board["source"] != "boulderseg"]["protocol"]) == {
        "the paper's: stopwatch and nothing dropped, person filter on"}


def test_the_markdown_prints_the_paper_rows_below_ours_labelled(tmp_path):
    leaderboard.write({"x3d_xs": {"mlp": metrics_row(70.0), "lstm": metrics_row(60.0)}}, title="t",
                      md_path=tmp_path / "b.md", csv_path=tmp_path / "b.csv")
    lines = (tmp_path / "b.md").read_text().splitlines()
    ours = [i for i, line in enumerate(lines) if line.startswith("| x3d_xs | ")]
    paper = [i for i, line in enumerate(lines) if line.startswith("| ") and "(paper)" in line.split("|")[1]]
    assert len(ours) == 2 and len(paper) == 26 and max(ours) < min(paper)
    assert "| **70.0 ± 1.2** |" in lines[ours[1]]  # best of ours in bold, std beside it
    assert "| r3d (paper) | lstm (paper) | 86.8 ± 3.5 | 83.5 ± 4.2 | 87.1 ± 3.7 | 89.7 ± 5.6 | — |" in "\n".join(lines)
    assert "| s3d_h (paper) | linear (paper's MLP) | 59.5 ± 8.9 | 0.0 ± 0.0 |" in "\n".join(lines)


def test_the_papers_clip_of_every_table3_backbone_is_the_one_we_feed_under_the_paper_rule():
    from pipeline.features import backbones

    registry = backbones.load_all()
    for _, r in TABLE3.iterrows():
        clip = registry[leaderboard.PAPER_NAMES[r["backbone"]]].input.clip("paper")
        assert clip.frames == r["frames"] and clip.seconds(25) == pytest.approx(r["seconds"]), r["backbone"]


def test_a_row_that_left_videos_unscored_says_which_above_the_table_and_prints_none_as_a_dash(tmp_path):
    partial = metrics_row(70.0) | {"edit": {"mean": None, "std": None},
                                   "not_scored": {"videos": ["climb3_face"], "folds": [2]}}
    leaderboard.write({"x3d_xs": {"mlp": partial, "lstm": partial, "linear": metrics_row(60.0)}}, title="t",
                      md_path=tmp_path / "b.md", csv_path=tmp_path / "b.csv")
    text = (tmp_path / "b.md").read_text()
    note = ("x3d_xs + mlp, x3d_xs + lstm: Not scored: climb3_face (nothing to score or predict: the person "
            "filter removed every frame, or every frame's class is dropped there); fold 2 scored nothing; in no figure or mean.")
    assert note in text.splitlines() and text.index(note) < text.index("| backbone | head |")
    mlp = next(line for line in text.splitlines() if line.startswith("| x3d_xs | mlp |"))
    assert mlp.split(" | ")[7] == "—"  # edit


@pytest.mark.parametrize(("drop", "removed", "title"), [
    ([], 0.0, "full: all 5 classes scored, person filter off (it removed no frame)"),
    ([], 0.125, "full: all 5 classes scored, person filter on (12.5 % of frames removed)"),
    (["stopwatch", "nothing"], 0.3, "the paper's: stopwatch and nothing dropped, person filter on"),
    (["stopwatch", "nothing"], 0.0, "custom: stopwatch, nothing dropped, person filter off (it removed no frame)"),
])
def test_the_title_says_whether_the_person_filter_removed_frames_from_scoring(drop, removed, title):
    assert leaderboard.protocol(drop, removed) == title
