"""`boulderseg export mstcn` writes files that parse the way MS-TCN's batch_gen.py reads them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import store
from pipeline.export import export_mstcn
from pipeline.features import windows

CLASSES = ["climbing", "brushing", "reading", "stopwatch", "nothing"]


def read_like_mstcn(root, split: int, kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """What MS-TCN's BatchGenerator does: mapping.txt -> actions_dict, the split's list, .npy and groundTruth."""
    actions = {line.split()[1]: int(line.split()[0]) for line in (root / "mapping.txt").read_text().split("\n")[:-1]}
    out = []
    for vid in (root / "splits" / f"{kind}.split{split}.bundle").read_text().split("\n")[:-1]:
        features = np.load(root / "features" / f"{vid.split('.')[0]}.npy")
        content = (root / "groundTruth" / vid).read_text().split("\n")[:-1]
        classes = np.zeros(min(np.shape(features)[1], len(content)))
        for i in range(len(classes)):
            classes[i] = actions[content[i]]
        out.append((features, classes))
    return out


@pytest.fixture
def project(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("v1", 40), ("v2", 24), ("v3", 32)):
        ranges = windows(n, window=16, stride=8)
        feats = rng.normal(size=(len(ranges), 6)).astype(np.float32)
        store.write(tmp_path / "features" / "bb" / f"{name}.zarr", feats, ranges, dict.fromkeys(store.CONFIG, None))
        labels = np.array(CLASSES)[np.arange(n) * 5 // n]
        (tmp_path / "labels").mkdir(exist_ok=True)
        pd.DataFrame({"frame": range(n), "label": labels}).to_csv(tmp_path / "labels" / f"{name}.csv", index=False)
    (tmp_path / "folds.json").write_text(json.dumps({"fold0": ["v1"], "fold1": ["v2", "v3"]}))
    return tmp_path


@pytest.mark.parametrize("level", ["frame", "window"])
def test_export_parses_as_mstcn_reads_it(project, level):
    out = project / "mstcn"
    assert export_mstcn(out, videos=["v1", "v2", "v3"], classes=CLASSES, folds_json=project / "folds.json",
                        labels_dir=project / "labels", features_dir=project / "features", backbone="bb",
                        level=level) == 3
    assert (out / "mapping.txt").read_text() == "0 climbing\n1 brushing\n2 reading\n3 stopwatch\n4 nothing\n"
    assert (out / "splits" / "test.split2.bundle").read_text() == "v2.txt\nv3.txt\n"
    assert (out / "splits" / "train.split2.bundle").read_text() == "v1.txt\n"
    (features, truth), = read_like_mstcn(out, 1, "test")
    fs = store.read(project / "features" / "bb" / "v1.zarr")
    frames = np.arange(40) * 5 // 40
    if level == "frame":
        assert features.shape == (6, 40) and truth.tolist() == frames.tolist()
        np.testing.assert_array_equal(features[:, 0], fs.features[0])  # frame 0: window 0's features
    else:
        assert features.shape == (6, len(fs.features)) and len(truth) == len(fs.features)
        np.testing.assert_array_equal(features, fs.features.T)
        assert truth[0] == 0 and truth[-1] == 3  # windows [0, 16) and [24, 40) tie between two classes: the lower
    assert [f.shape[1] for f, _ in read_like_mstcn(out, 2, "test")] == ([24, 32] if level == "frame" else [2, 3])
