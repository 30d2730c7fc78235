"""status, timeline and inspect video on a copy of the shared e2e run."""
from __future__ import annotations

import json

import cv2
import pyarrow.parquet as pq
import pytest

from e2e import BOULDERSEG, HEADS, set_params, sh

pytestmark = pytest.mark.slow


def test_status_reports_what_dvc_status_says_per_video(project):
    set_params(project, lambda p: p["videos"]["climb2_face"].update(offset=0.2))
    stale = set(json.loads(sh("dvc", "status", "--json", cwd=project)))
    assert "labels@climb2_face" in stale and "frames@climb2_face" not in stale
    out = sh(BOULDERSEG, "status", cwd=project)
    lines = {line.split()[0]: line for line in out.splitlines()[1:9]}
    assert lines["climb2_face"].endswith("labels") and "250" in lines["climb2_face"] and "x3d_xs" in lines["climb2_face"]
    assert all(line.endswith("up to date") for key, line in lines.items() if key != "climb2_face")
    also = out.splitlines()[-1].removeprefix("also stale: ").split(", ")
    assert set(also) == {s for s in stale if "@climb2_face" not in s}


def test_timeline_and_inspect_draw_pictures_of_the_expected_size(project):
    out = sh(BOULDERSEG, "inspect", "timeline", "climb1_face", cwd=project)
    assert out.strip() == ("reports/look/climb1_face/timeline.png: truth, "
                           + ", ".join(f"x3d_xs + {h}" for h in sorted(HEADS)) + ", person in frame")
    image = cv2.imread(str(project / "reports/look/climb1_face/timeline.png"))
    assert image.shape == (round(110 * (0.5 * (len(HEADS) + 2) + 1.2)), 1100, 3)

    out = sh(BOULDERSEG, "inspect", "video", "climb1_face", cwd=project)
    assert "source   mpeg4, 25 fps stated" in out and "250 JPGs on disk at 25 fps, 320×240" in out
    passing = pq.read_table(project / "data/persons/climb1_face.parquet")["person"].to_numpy().mean()
    assert "features x3d_xs: (31, 2048) float16" in out and f"{100 * passing:.1f} % of frames pass the person filter" in out
    assert 0.3 < passing < 0.9  # BlazePose, a real filter: the unannotated gaps show nobody
    sheet = cv2.imread(str(project / "reports/look/climb1_face/contact.png"))
    assert sheet.shape == (3 * 240, 4 * 320, 3)  # 12 frames, 4 a row
    assert sh("git", "status", "--porcelain", cwd=project) == ""  # pictures are not part of the dataset


def test_a_video_with_a_low_person_share_is_shown_by_status_and_stats(project):
    from personshare import lower_person_share

    lower_person_share(project / "data/persons/climb2_face.parquet", 0.2)
    out = sh(BOULDERSEG, "status", cwd=project)
    row = next(line for line in out.splitlines() if line.startswith("climb2_face"))
    assert "20 % (low)" in row and "(low)" not in next(line for line in out.splitlines() if line.startswith("climb1_face"))
    advice = [line for line in out.splitlines() if line.startswith("low person share: ")]
    assert advice == ["low person share: climb2_face: only 20% of its frames show a person to the filter, and only "
                      "those are trained on and scored. If a climber is there, try persons.track true, persons.tiles "
                      "[2, 3], a larger persons.short_side or a lower persons.conf; `boulderseg inspect video "
                      "climb2_face` draws what it found."]
    printed = sh(BOULDERSEG, "stage", "stats", cwd=project)
    assert "low person share: climb2_face: only 20%" in printed
    share = json.loads((project / "reports/dataset.json").read_text())["person_share"]
    assert share["per_video"]["climb2_face"] == 0.2 and share["low"] == ["climb2_face"] and share["threshold"] == 0.5
    assert all(0.5 <= v <= 1 for k, v in share["per_video"].items() if k != "climb2_face")
