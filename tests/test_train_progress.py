"""The train stage says where it is while it runs: a line per fold (and per C for logreg), with elapsed seconds, on
stderr, which `dvc repro` passes through (also when the warm process runs the stage)."""
from __future__ import annotations

import re

import pytest

from e2e import SHIPPED_HEADS, set_params, sh

pytestmark = pytest.mark.slow


def test_dvc_repro_of_a_train_stage_shows_a_line_per_fold_and_per_c(small):
    set_params(small, lambda p: p["train"]["heads"].update(logreg=SHIPPED_HEADS["logreg"]))
    out = sh("dvc", "repro", "-s", "train-pytorchvideo@x3d_xs-logreg", cwd=small)
    assert "stages.train: run by warm process" in out  # the lines come through the warm process's relay
    lines = [line for line in out.splitlines() if line.startswith("train x3d_xs-logreg: ")]
    said = [re.sub(r" \[\d+ s\]$", "", line.removeprefix("train x3d_xs-logreg: ")) for line in lines]
    assert all(re.search(r" \[\d+ s\]$", line) for line in lines)  # seconds since the stage started
    for k, i in ((0, 1), (1, 2)):  # two folds of one climb each: nothing to choose C on inside a fold
        assert f"fold {k} ({i}/2): training on 1 videos, testing on 1" in said
        assert any(re.fullmatch(rf"fold {k} \({i}/2\): trained in \d+\.\d s", s) for s in said)
    assert said[said.index("bundle: training on all 2 videos") + 1:] == [
        s for s in said if s.startswith("bundle: C=")]  # the bundle chooses C on the two climbs: a line per C
    assert [s.split(":")[1].strip() for s in said if s.startswith("bundle: C=")] == [
        f"C={c:g}" for c in SHIPPED_HEADS["logreg"]["model"]["Cs"]]
