"""The contact sheet draws the tracked person's box on every tile whose frame shows a person within one detection
stride of a box, not only on the frames the person detector ran on (every persons.every-th), and none across a gap
the filter bridged with no detection."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.core import params
from pipeline.views.look import contact_sheet, tracked_boxes, video_frames


def test_boxes_fill_a_detection_stride_and_never_a_bridged_gap():
    boxes = [None] * 30
    for i in (0, 5, 10, 25):  # detections every 5th frame; 15 and 20 missed, bridged by the filter
        boxes[i] = [i, 0, i + 10, 10]
    drawn = tracked_boxes(pd.DataFrame({"box": boxes, "person": [True] * 29 + [False]}))[:, 0]
    assert drawn[:11].tolist() == list(range(11))  # interpolated one stride apart
    assert drawn[11:15].tolist() == [10] * 4 and drawn[25:29].tolist() == [25] * 4  # carried, less than a stride
    assert np.isnan(drawn[15:25]).all() and np.isnan(drawn[29])  # no line across the gap, no early box; nobody at 29


@pytest.mark.slow
def test_every_tile_with_a_person_has_the_box_drawn_and_no_other(small_run, tmp_path):
    root = small_run[0]
    p = params.load(root / "params.yaml")
    df, _ = video_frames(p, "climb1_face", root)
    sheet_png = tmp_path / "contact.png"
    drawn = contact_sheet(root / "data/frames/climb1_face", df, sheet_png)

    detected = set(np.flatnonzero([b is not None for b in df["box"]]))
    with_person = [i for i in drawn if df["person"][i]]
    assert len(with_person) >= 4 and set(with_person) - detected  # the sheet samples frames nobody was detected on
    sheet = cv2.imread(str(sheet_png))
    for tile, (i, box) in enumerate(drawn.items()):
        r, c = divmod(tile, 4)
        raw = cv2.imread(str(root / f"data/frames/climb1_face/{i:06d}.jpg"))
        h, w = raw.shape[:2]
        changed = np.any(sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] != raw, axis=-1)[23:]  # below the caption bar
        step = min(np.diff(sorted(detected)))  # the detection stride
        near = any(0 <= i - k < step or (k > i and k - max((j for j in detected if j <= i), default=-step) <= step)
                   for k in detected)  # carried less than a stride, or between two boxes a stride apart
        assert (box is not None) == (bool(df["person"][i]) and near), i
        assert changed.sum() > 100 if box is not None else not changed.any(), i
        if box is not None:  # the box lies between those of the detections around the frame (or is the last one)
            known = sorted(detected)
            before = max((k for k in known if k <= i), default=known[0])
            after = min((k for k in known if k >= i), default=known[-1])
            a, b = np.asarray(df["box"][before]), np.asarray(df["box"][after])
            assert np.all(np.asarray(box) >= np.minimum(a, b) - 1) and np.all(np.asarray(box) <= np.maximum(a, b) + 1), i
