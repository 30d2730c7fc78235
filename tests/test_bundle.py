"""A bundle loads in a fresh process from its directory alone and predicts what the trained head predicted."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_selection import LINEAR, LOGREG, dataset
from test_train import CLASSES, video

from conftest import REPO
from pipeline.core.errors import BouldersegError
from pipeline.learning import bundle
from pipeline.learning.train import HeadConfig, Loss, fit, predict_frames


@pytest.mark.parametrize("name", ["linear", "mstcn"])
def test_a_bundle_predicts_in_a_fresh_process_exactly_what_the_head_did(tmp_path, name):
    videos = [video(f"v{i}", f"c{i}", 12, i) for i in range(4)]
    cfg = HeadConfig(name, 30, 0.01, 0.0, {} if name == "linear" else {"stages": 2, "layers": 3, "channels": 8})
    head = fit(cfg, videos, n_classes=3, min_person_fraction=0.5, seed=0)
    bundle.train_bundle(videos, cfg, tmp_path / name, info={"backbone": {"backbone": "synthetic"}, "mode_filter": 0},
                        cv_metrics={"accuracy": {"mean": 99.0}}, classes=CLASSES, min_person_fraction=0.5, seed=0,
                        loss=Loss())
    test = video("new", "c9", 15, 42)
    np.save(tmp_path / "features.npy", test.features)
    np.save(tmp_path / "owner.npy", test.owner)
    script = (f"import numpy as np; from pipeline.learning import bundle; h, m = bundle.load({str(tmp_path / name)!r}); "
              f"print(' '.join(bundle.predict(h, m, np.load({str(tmp_path / 'features.npy')!r}), "
              f"np.load({str(tmp_path / 'owner.npy')!r}))[0]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={"PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == np.asarray(CLASSES)[predict_frames(head, test)].tolist()
    meta = json.loads((tmp_path / name / "bundle.json").read_text())
    assert meta["head"] == name and meta["classes"] == CLASSES and meta["cv_metrics"] == {"accuracy": {"mean": 99.0}}
    assert meta["params"]["epochs"] == 30 and meta["trained_on"] == ["v0", "v1", "v2", "v3"]
    assert meta["code_version"].startswith("boulderseg 0.1.0 (") and meta["feature_dim"] == 6


def test_a_missing_bundle_says_how_to_make_it(tmp_path):
    with pytest.raises(BouldersegError, match=r"not a model bundle .* Run `dvc repro` to train it \(its stage is "
                                              r"train-<family>@<backbone>-<head>\)"):
        bundle.load(tmp_path)


def test_a_bundle_from_before_the_search_keys_predicts_as_it_was_trained():
    from pipeline.core import params
    from pipeline.persons.filter import Search

    old = {"frames": {"height": 256, "jpg_quality": 90},
           "persons": {"detector": "blazepose", "model": "yolo11n", "imgsz": 320, "conf": 0.5, "every": 5}}
    assert bundle.short_side(old) == 256  # frames.height sized the rows of the landscape videos it was trained on
    assert bundle.short_side({"frames": {"short_side": None, "jpg_quality": 90}}) is None
    assert Search.of(params.Persons(**old["persons"])).plain  # the whole-frame filter it was trained with


SYNTHETIC = {"backbone": {"backbone": "synthetic"}, "mode_filter": 0}


def test_a_bundle_records_the_epochs_its_head_trained_for_and_an_older_one_still_loads(tmp_path):
    videos, cfg = dataset(), replace(LINEAR, epochs=50)  # 50: not among the select_epochs (2, 10, 40)
    bundle.train_bundle(videos, cfg, tmp_path / "b", info=SYNTHETIC, cv_metrics=None, classes=CLASSES,
                        min_person_fraction=0.5, seed=0, loss=Loss(), select="nested")
    head, meta = bundle.load(tmp_path / "b")
    assert meta["params"]["epochs"] == meta["chosen"]["epochs"] in (2, 10, 40)
    assert meta["params"]["configured_epochs"] == 50
    alone = fit(replace(cfg, epochs=meta["params"]["epochs"]), videos, n_classes=3, min_person_fraction=0.5, seed=0)
    for k, v in alone.state_dict().items():  # the recorded epochs are those its weights were trained for
        assert torch.equal(head.state_dict()[k], v), k
    old = meta | {"params": {k: v for k, v in meta["params"].items() if k != "configured_epochs"} | {"epochs": 50}}
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(old))  # as written before configured_epochs
    assert bundle.load(tmp_path / "b")[1]["params"]["epochs"] == 50


def test_a_solved_heads_bundle_records_no_epochs(tmp_path):
    bundle.train_bundle(dataset(), LOGREG, tmp_path / "b", info=SYNTHETIC, cv_metrics=None, classes=CLASSES,
                        min_person_fraction=0.5, seed=0, loss=Loss())
    meta = bundle.load(tmp_path / "b")[1]
    assert meta["params"]["epochs"] is None and "C" in meta["chosen"]
