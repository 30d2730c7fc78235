"""The review app in a real browser (Playwright driving Debian's chromium) on the two-video sample run: play,
step, edit with the keyboard and the mouse, reload, save, and the sheet read back through the labels stage.

With BOULDERSEG_SCREENSHOTS=DIR the test run leaves its screenshots there (the README's come from
`BOULDERSEG_SCREENSHOTS=docs/review pytest tests/test_review_browser.py`)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from e2e import BOULDERSEG, sh
from test_review import review, stage_labels

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ["BOULDERSEG_SCREENSHOTS"]) if os.environ.get("BOULDERSEG_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail("chromium is not installed: `apt-get install chromium` (.ci/run does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert errors == []


def shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def expanded(segments: list[dict]) -> list[str]:
    return [s["label"] for s in segments for _ in range(s["start"], s["end"])]


def keyboard_edits(segments: list[dict]) -> list[str]:
    """Per-frame labels after the test's keys: `1` at frame 50 (climbing from there to the segment's end), `b` and
    `3` at 75 (a boundary, then reading to the next boundary); Delete and Ctrl+Z cancel out."""
    out = [dict(s) for s in segments]

    def split(frame: int) -> int:
        i = next(k for k, s in enumerate(out) if s["start"] <= frame < s["end"])
        if out[i]["start"] != frame:
            out[i:i + 1] = [out[i] | {"end": frame}, out[i] | {"start": frame}]
            i += 1
        return i

    out[split(50)]["label"] = "climbing"
    out[split(75)]["label"] = "reading"
    return expanded(out)


def test_play_step_edit_reload_and_save_read_back_through_the_labels_stage(small, page, tmp_path):
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")
        rows = page.get_by_test_id("video-row")
        rows.first.wait_for()
        assert rows.count() == 2
        shot(page, "videos")
        page.goto(f"{base}/videos/climb1_face")
        page.wait_for_function("window.review && window.review.ready")
        player = page.get_by_test_id("player")
        player.focus()
        assert page.get_by_test_id("track-truth").get_by_test_id("segment").count() > 1
        assert page.get_by_test_id("track-linear").count() == 1 and page.get_by_test_id("track-lstm").count() == 1

        page.keyboard.press(" ")  # play about a second
        page.wait_for_timeout(1000)
        page.keyboard.press(" ")
        played = page.evaluate("window.review.frame")
        assert 5 <= played <= 40
        page.keyboard.press("Home")  # not a key of the app: nothing moves
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("ArrowLeft")
        assert page.evaluate("window.review.frame") == played + 3 + 25 - 1
        assert page.get_by_test_id("player").evaluate("p => p.querySelector('img').src").endswith(
            f"/frames/{played + 27}.jpg")

        truth = page.get_by_test_id("track-truth")
        truth.click(position={"x": truth.bounding_box()["width"] * 0.5, "y": 10})  # a click on a track goes there
        assert page.evaluate("window.review.frame") == 125
        truth.click(position={"x": 1, "y": 10})
        assert page.evaluate("window.review.frame") == 0
        before = page.evaluate("window.review.segments")
        player.focus()
        for _ in range(50):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("1")  # climbing from frame 50 to the next boundary
        page.keyboard.press("Shift+ArrowRight")  # frame 75
        page.keyboard.press("b")  # a boundary at 75
        page.keyboard.press("3")  # reading from 75 to the next boundary
        page.keyboard.press("Delete")  # the boundary at 75 goes: the segment before it extends
        page.keyboard.press("Control+z")  # ... and comes back
        edited = page.evaluate("window.review.segments")
        assert expanded(edited) == keyboard_edits(before)
        page.keyboard.press("Control+Shift+z")  # redo: the Delete again, one boundary fewer
        assert len(page.evaluate("window.review.segments")) == len(edited) - 1
        page.keyboard.press("Control+z")
        assert page.evaluate("window.review.segments") == edited
        handle = page.get_by_test_id("track-truth").get_by_test_id("boundary").first
        box, track = handle.bounding_box(), page.get_by_test_id("track-truth").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + track["width"] * 4 / 250, box["y"] + 5, steps=4)
        page.mouse.up()
        dragged = page.evaluate("window.review.segments")
        assert dragged[1]["start"] == edited[1]["start"] + 4
        shot(page, "video")

        page.reload()  # unsaved changes survive
        page.wait_for_function("window.review && window.review.ready")
        assert page.evaluate("window.review.segments") == dragged
        page.get_by_test_id("player").focus()
        page.keyboard.press("s")
        page.wait_for_function("window.review.saved")
        assert stage_labels(small, "climb1_face", tmp_path) == expanded(dragged)
        page.reload()  # the saved segmentation, before any `dvc repro`
        page.wait_for_function("window.review && window.review.ready")
        assert page.evaluate("localStorage.length") == 0
        assert expanded(page.evaluate("window.review.segments")) == expanded(dragged)


def test_the_report_page_shows_predicts_figures_for_the_same_labels(small, page, tmp_path):
    """`predict` on a sample video; its prediction saved as that video's truth; after the labels stage the
    report's row for it equals predict's report.json."""
    import json

    import pandas as pd

    video = next(small.glob("data/raw/videos/climb2_face.*"))
    out = tmp_path / "predicted"
    sh(BOULDERSEG, "predict", str(video), "--model", "models/x3d_xs/lstm", "--out", str(out), cwd=small)
    expected = json.loads((out / "report.json").read_text())
    frames = pd.read_csv(out / "frames.csv")
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")
        runs, start = [], 0
        labels = frames["label"].tolist()
        for i in range(1, len(labels) + 1):
            if i == len(labels) or labels[i] != labels[start]:
                runs.append({"label": labels[start], "start": start / 25, "end": i / 25})
                start = i
        saved = page.evaluate("""async (body) => (await fetch('/api/videos/climb2_face/segments', {method: 'PUT',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})).json()""", runs)
        assert sum(saved["counts"].values()) == len(labels)
        sh("dvc", "repro", "-q", "labels@climb2_face", cwd=small)
        page.goto(f"{base}/report")
        row = page.locator("[data-testid=report-row][data-video=climb2_face]")
        row.wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[3] == "truth" and cells[4] == str(expected["attempts"])
        first = expected["time_to_first_attempt_s"]
        assert cells[5] == ("-" if first is None else f"{first:g}")
        assert cells[6] == (", ".join(f"{s:g}" for s in expected["reading_before_attempt_s"]) or "-")
        assert cells[7] == f"{expected['phases'].get('brushing', {}).get('total_s', 0.0):g}"
        shot(page, "report")


def test_the_videos_list_marks_a_video_the_person_filter_mostly_cannot_see(small, page):
    from personshare import lower_person_share

    lower_person_share(small / "data/persons/climb2_face.parquet", 0.3)
    with review(small) as (base, token, _):
        api = httpx.get(f"{base}/api/videos", headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
        warning = {v["key"]: v["person_warning"] for v in api["videos"]}
        assert warning["climb1_face"] is None
        assert warning["climb2_face"].startswith("climb2_face: only 30% of its frames show a person to the filter")
        page.goto(f"{base}/?token={token}")
        page.get_by_test_id("video-row").first.wait_for()
        low = page.get_by_test_id("low-share")
        assert low.count() == 1 and low.inner_text() == "30 % ⚠ low"
        assert low.get_attribute("title") == warning["climb2_face"]
        row = page.get_by_test_id("video-row").filter(has=low)
        assert row.get_by_role("link").inner_text() == "climb2_face"
