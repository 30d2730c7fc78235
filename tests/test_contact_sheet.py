"""The contact sheet draws the tracked person's box on every tile whose frame shows a person, not only on the frames
the person detector ran on (every persons.every-th)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core import params
from pipeline.views.look import contact_sheet, video_frames

pytestmark = pytest.mark.slow


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
        assert (box is not None) == bool(df["person"][i]), i
        assert changed.sum() > 100 if box is not None else not changed.any(), i
        if box is not None:  # the box lies between those of the detections around the frame (or is the nearest one)
            known = sorted(detected)
            before = max((k for k in known if k <= i), default=known[0])
            after = min((k for k in known if k >= i), default=known[-1])
            a, b = np.asarray(df["box"][before]), np.asarray(df["box"][after])
            assert np.all(np.asarray(box) >= np.minimum(a, b) - 1) and np.all(np.asarray(box) <= np.maximum(a, b) + 1), i
