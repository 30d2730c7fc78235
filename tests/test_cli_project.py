"""The commands' --json, report's table, status while DVC is busy and add after predict, on a copy of the
two-video project (tests/conftest.py `small`)."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from e2e import BOULDERSEG, ENV, sh
from pipeline.annotations.sample import make_video

pytestmark = pytest.mark.slow
KEYS = ["climb1_face", "climb2_face"]


def as_json(*command: str, cwd, code: int = 0) -> dict | list:
    """`boulderseg COMMAND --json`'s stdout, parsed: nothing else on it (exit status `code`)."""
    r = subprocess.run([BOULDERSEG, *command, "--json"], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == code, r.stderr
    return json.loads(r.stdout)


def test_json_outputs_parse_and_report_prints_a_table(small, tmp_path):
    status = as_json("status", cwd=small)
    assert [v["video"] for v in status["videos"]] == KEYS and status["dvc_busy"] is False
    assert status["also_stale"] == [] and all(v["stale"] == [] and v["features"] == ["x3d_xs"] and v["frames"] == 250
                                              and 0 < v["person_share"] <= 1 for v in status["videos"])
    video = as_json("inspect", "video", "climb1_face", cwd=small)
    assert set(video) == {"video", "source", "frames", "labels", "person_share", "features", "contact_sheet"}
    assert video["frames"]["on_disk"] == 250 and video["features"]["x3d_xs"]["dtype"] == "float16"
    assert sum(video["labels"].values()) == pytest.approx(1.0)
    validated = as_json("validate", cwd=small, code=1)  # the sample's other files are on disk, in no entry
    assert len(validated["summaries"]) == 2 and len(validated["problems"]) == 12
    assert "data/raw/videos/climb3_face.mp4: video without annotation" in validated["problems"][-4]
    verified = as_json("verify", cwd=small)
    assert verified == {"videos": KEYS, "problems": [], "rerun": []}

    rows = as_json("report", cwd=small)
    assert [r["video"] for r in rows] == KEYS and all(r["source"] == "truth" for r in rows)
    table, *body, summary = sh(BOULDERSEG, "report", cwd=small).splitlines()
    assert table.split()[:9] == ["climb", "view", "video", "source", "duration", "attempts", "time_to_first_attempt",
                                 "reading_before_attempt", "brushing_total"]
    assert [line.split()[2] for line in body] == KEYS and [int(line.split()[5]) for line in body] == \
        [r["attempts"] for r in rows]
    assert summary == "2 video(s), 2 from their annotation; times in seconds"
    assert sh(BOULDERSEG, "report", "--csv", str(tmp_path / "r.csv"), cwd=small).startswith(f"{tmp_path / 'r.csv'}: 2")
    assert pd.read_csv(tmp_path / "r.csv")["attempts"].tolist() == [r["attempts"] for r in rows]
    text = (small / "params.yaml").read_text()  # a climb name someone typed: text in the CSV, never a formula
    (small / "params.yaml").write_text(text.replace("climb: climb1\n", "climb: '=HYPERLINK(\"http://x\")'\n", 1))
    sh(BOULDERSEG, "report", "--csv", str(tmp_path / "typed.csv"), cwd=small)
    assert pd.read_csv(tmp_path / "typed.csv")["climb"].tolist()[0] == "'=HYPERLINK(\"http://x\")"


def test_status_answers_while_dvc_is_busy(small):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom dvc.repo import Repo, lock_repo\n"
                               "with lock_repo(Repo('.')):\n    print('held', flush=True)\n    time.sleep(60)"],
                              cwd=small, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        lines = sh(BOULDERSEG, "status", cwd=small).splitlines()
        assert [line.split()[0] for line in lines[1:3]] == KEYS
        assert all(line.endswith("unknown (DVC is busy)") for line in lines[1:3])
        assert lines[-1] == "aggregate stages: unknown (DVC is busy)"
        busy = as_json("status", cwd=small)
        assert busy["dvc_busy"] is True and busy["also_stale"] is None
        assert all(v["stale"] is None and v["frames"] == 250 for v in busy["videos"])
    finally:
        holder.kill()
        holder.wait()


def test_the_advice_after_predict_all_unannotated_adds_the_sheet_with_the_recorded_climb(small, tmp_path):
    entry = make_video(tmp_path / "incoming", climb=5, view="face")
    sh(BOULDERSEG, "add", entry["video"], "--climb", "gym", "--view", "face", cwd=small)
    sh("dvc", "repro", "-q", cwd=small)  # its frames, persons and features
    printed = sh(BOULDERSEG, "predict", "--all-unannotated", "--model", "models/x3d_xs/linear", cwd=small)
    advice = re.search(r"then `(boulderseg add [^`]+)`", printed).group(1)
    added = sh(BOULDERSEG, *shlex.split(advice)[1:], cwd=small)
    assert added.startswith("added videos.climb5_face to params.yaml: 250 frames")
    p = yaml.safe_load((small / "params.yaml").read_text())
    assert p["videos"]["climb5_face"] == {"climb": "gym", "view": "face", "video": "data/raw/videos/climb5_face.mp4",
                                          "annotation": "data/raw/annotations/climb5_face.xlsx"}  # the climb recorded;
    # the sheet named after its video: every predicted one is segments.xlsx
    assert "climb5_face" not in (p.get("unannotated") or {})
