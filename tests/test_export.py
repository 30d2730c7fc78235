"""`boulderseg export mstcn` writes files that parse the way MS-TCN's batch_gen.py reads them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.features import store
from pipeline.features.windows import windows
from pipeline.learning.export import export_mstcn
from pipeline.learning.metrics import OVERLAPS, score

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
    """Three videos of all five classes; the person filter removes each video's first and last two frames."""
    rng = np.random.default_rng(0)
    for name, n in (("v1", 40), ("v2", 24), ("v3", 32)):
        ranges = windows(n, window=16, stride=8)
        feats = rng.normal(size=(len(ranges), 6)).astype(np.float32)
        store.write(tmp_path / "features" / "bb" / f"{name}.zarr", feats, ranges,
                    dict.fromkeys(store.CONFIG, None) | {"n_frames": n})
        labels = np.array(CLASSES)[np.arange(n) * 5 // n]
        (tmp_path / "labels").mkdir(exist_ok=True)
        pd.DataFrame({"frame": range(n), "label": labels}).to_csv(tmp_path / "labels" / f"{name}.csv", index=False)
        person = np.ones(n, bool)
        person[[0, 1, n - 2, n - 1]] = False
        (tmp_path / "persons").mkdir(exist_ok=True)
        pq.write_table(pa.table({"frame": np.arange(n), "person": person}), tmp_path / "persons" / f"{name}.parquet")
    (tmp_path / "folds.json").write_text(json.dumps({"fold0": ["v1"], "fold1": ["v2", "v3"]}))
    return tmp_path


def export(project, **kwargs) -> int:
    return export_mstcn(project / "mstcn", videos=["v1", "v2", "v3"], folds_json=project / "folds.json",
                        labels_dir=project / "labels", persons_dir=project / "persons",
                        features_dir=project / "features", backbone="bb", **kwargs)


@pytest.mark.parametrize("level", ["frame", "window"])
def test_raw_export_parses_as_mstcn_reads_it(project, level):
    out = project / "mstcn"
    assert export(project, classes=CLASSES, level=level, raw=True) == 3
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


def test_the_default_export_follows_the_leaderboard_protocol(project):
    kept, dropped = CLASSES[:3], CLASSES[3:]
    export(project, classes=kept, dropped=dropped)
    out = project / "mstcn"
    assert (out / "mapping.txt").read_text() == "0 climbing\n1 brushing\n2 reading\n3 background\n"
    truth = (out / "groundTruth" / "v1.txt").read_text().split()
    labels = np.array(CLASSES)[np.arange(40) * 5 // 40]
    for i, (t, label) in enumerate(zip(truth, labels)):
        counted = label in kept and i not in (0, 1, 38, 39)
        assert t == (label if counted else "background"), i
    read_like_mstcn(out, 1, "test")  # parses as MS-TCN reads it


# MS-TCN's evaluation (yabufarha/ms-tcn, eval.py), written from its definitions: background forms no segment;
# a segment ends where the next label starts, and the video's last one at its last frame's index.
def mstcn_segments(labels, bg=("background",)):
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] not in bg:
                out.append((labels[start], start, i if i < len(labels) else i - 1))
            start = i
    return out


def mstcn_edit(pred, truth) -> float:
    p, t = [s[0] for s in mstcn_segments(pred)], [s[0] for s in mstcn_segments(truth)]
    d = np.zeros((len(p) + 1, len(t) + 1))
    d[:, 0], d[0, :] = np.arange(len(p) + 1), np.arange(len(t) + 1)
    for i in range(1, len(p) + 1):
        for j in range(1, len(t) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (p[i - 1] != t[j - 1]))
    return (1 - d[-1, -1] / max(len(p), len(t))) * 100


def mstcn_counts(pred, truth, overlap):
    p, t = mstcn_segments(pred), mstcn_segments(truth)
    hits, tp, fp = np.zeros(len(t)), 0, 0
    for label, s, e in p:
        iou = np.array([(min(e, te) - max(s, ts)) / (max(e, te) - min(s, ts)) * (label == tl) for tl, ts, te in t])
        best = iou.argmax()
        if iou[best] >= overlap and not hits[best]:
            tp, hits[best] = tp + 1, 1
        else:
            fp += 1
    return tp, fp, len(t) - hits.sum()


def test_mstcn_scores_on_the_export_what_the_leaderboard_scores(project):
    kept, dropped = CLASSES[:3], CLASSES[3:]
    export(project, classes=kept, dropped=dropped)
    rng = np.random.default_rng(1)
    tables, edits, counts = [], [], {k: np.zeros(3) for k in OVERLAPS}
    for name in ("v1", "v2", "v3"):
        truth = (project / "mstcn" / "groundTruth" / f"{name}.txt").read_text().split()
        labels = pd.read_csv(project / "labels" / f"{name}.csv")["label"].to_numpy(str)
        person = pq.read_table(project / "persons" / f"{name}.parquet")["person"].to_numpy()
        pred = np.array(kept)[np.minimum(np.arange(len(truth)) * 3 // len(truth) + rng.integers(0, 2, len(truth)), 2)]
        recognized = np.where(person, pred, "background")  # what a model trained on the export predicts there
        edits.append(mstcn_edit(list(recognized), truth))
        for k in OVERLAPS:
            counts[k] += mstcn_counts(list(recognized), truth, k)
        tables.append(pd.DataFrame({"video": name, "frame": range(len(truth)), "label": labels, "pred": pred,
                                    "scored": person & np.isin(labels, kept), "person": person}))
    ours = score(pd.concat(tables, ignore_index=True), kept)
    assert ours["edit"] == pytest.approx(np.mean(edits))
    for k, (tp, fp, fn) in counts.items():
        f1 = 2 * tp / (2 * tp + fp + fn) * 100 if tp else 0.0
        assert ours[f"f1@{round(k * 100)}"] == pytest.approx(f1), k
    assert 0 < ours["f1@50"] < 100 and ours["edit"] < 100  # a prediction with mistakes, not a trivial match
