"""The review app in a real browser (Playwright driving Debian's chromium) on the two-video sample run, used as a
person uses it: real clicks and keys, never a focus() or script that helps the page (scripts only read its state).
Play, step, edit with the keyboard and the mouse, reload, save, and the sheet read back through the labels stage;
boundaries and classes by key and button; a save from an older tab; a page on another local port that frames the
app; the videos list before `dvc status` answers; an unknown video; the climb prompt cancelled.

With BOULDERSEG_SCREENSHOTS=DIR the test run leaves its screenshots there (the README's come from
`BOULDERSEG_SCREENSHOTS=docs/review pytest tests/test_review_browser.py`)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from e2e import BOULDERSEG, ENV, sh
from test_review import review, stage_labels

from pipeline.annotations.sample import make_video

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


def open_video(page, base: str, key: str = "climb1_face") -> None:
    page.goto(f"{base}/videos/{key}")
    page.wait_for_function("() => window.review && window.review.ready")  # a function: the CSP forbids eval


def click_frame(page, frame: int) -> None:
    """A mouse click on the truth track where it shows `frame` (a frame away from a boundary's handle)."""
    box = page.get_by_test_id("track-truth").bounding_box()
    page.mouse.click(box["x"] + box["width"] * (frame + 0.5) / page.evaluate("window.review.frames"), box["y"] + 10)
    assert page.evaluate("window.review.frame") == frame


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
        open_video(page, base)
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
        for _ in range(50):  # the keys work after the click, with nothing focused by hand
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
        page.wait_for_function("() => window.review && window.review.ready")
        assert page.evaluate("window.review.segments") == dragged
        name = page.get_by_test_id("track-truth").locator(".name")
        assert name.inner_text() == "truth: editing"
        page.mouse.click(10, 10)  # on the header, then the keys
        page.keyboard.press("s")
        page.wait_for_function("() => window.review.saved")
        assert stage_labels(small, "climb1_face", tmp_path) == expanded(dragged)
        assert name.inner_text() == "truth: saved" and name.evaluate("n => n.scrollWidth <= n.clientWidth")
        message = page.get_by_test_id("message").inner_text()  # seconds per phase, not frames
        assert message.startswith("saved data/raw/annotations/climb1_face.reviewed.xlsx: ")
        assert all(f"{label} {n / 25:g} s" in message for label, n in Counter(expanded(dragged)).items())
        page.reload()  # the saved segmentation, before any `dvc repro`
        page.wait_for_function("() => window.review && window.review.ready")
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
        saved = page.evaluate("""async (segments) => (await fetch('/api/videos/climb2_face/segments', {method: 'PUT',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({base: null, segments})})).json()""",
                              runs)
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


def test_boundaries_by_key_delete_the_nearest_classes_by_button_and_keys_after_any_button(small, page):
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")
        open_video(page, base)
        starts = [s["start"] for s in page.evaluate("window.review.segments")[1:]]
        click_frame(page, (starts[0] + starts[1]) // 2)
        for key, frame in (("]", starts[1]), ("]", starts[2]), ("[", starts[1]), ("PageUp", starts[0]),
                           ("PageDown", starts[1])):
            page.keyboard.press(key)
            assert page.evaluate("window.review.frame") == frame, key
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Delete")  # two frames past the boundary: it goes all the same
        assert [s["start"] for s in page.evaluate("window.review.segments")[1:]] == [starts[0], *starts[2:]]

        page.get_by_role("button", name="play").click()  # a button has the focus: space pauses (once), arrows step
        page.wait_for_timeout(300)
        page.keyboard.press(" ")
        assert page.get_by_role("button", name="play").is_visible()
        stopped = page.evaluate("window.review.frame")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("window.review.frame") == stopped + 1
        page.locator("#classes button[data-class=reading]").click()  # the class by mouse, as key 3 does
        frame = stopped + 1
        segments = page.evaluate("window.review.segments")
        assert next(s["label"] for s in segments if s["start"] <= frame < s["end"]) == "reading"
        page.keyboard.press("ArrowLeft")
        assert page.evaluate("window.review.frame") == frame - 1


def test_a_save_from_a_page_older_than_anothers_save_asks_to_reload_or_overwrite(small, page, tmp_path):
    """Two tabs on one video; the second saves first; the first's save is refused and shows why, and its
    overwrite saves it; then the second's save is the stale one, and its reload shows the first's."""
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")
        open_video(page, base)
        second = page.context.new_page()
        open_video(second, base)
        segments = page.evaluate("window.review.segments")
        middle = [(s["start"] + s["end"]) // 2 for s in segments]
        click_frame(second, middle[1])
        second.keyboard.press("1")
        second.keyboard.press("s")
        second.wait_for_function("() => window.review.saved")

        page.bring_to_front()
        click_frame(page, middle[-2])
        page.keyboard.press("3")
        page.keyboard.press("s")
        page.get_by_test_id("overwrite").wait_for(timeout=10_000)
        assert "saved from another page" in page.get_by_test_id("message").inner_text()
        assert page.evaluate("window.review.saved") is None
        page.get_by_test_id("overwrite").click()
        page.wait_for_function("() => window.review.saved")
        mine = page.evaluate("window.review.segments")
        assert stage_labels(small, "climb1_face", tmp_path) == expanded(mine)

        second.bring_to_front()
        second.keyboard.press("s")
        second.once("dialog", lambda dialog: dialog.accept())
        second.get_by_test_id("reload").click()
        second.wait_for_function("() => window.review && window.review.ready && !window.review.saved")
        assert expanded(second.evaluate("window.review.segments")) == expanded(mine)
        second.close()


@contextmanager
def site(folder: Path):
    """Another local web server: `folder` on 127.0.0.1 at a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_local_port_cannot_frame_the_app_so_keys_typed_there_save_nothing(small, page, tmp_path):
    """The clickjacking attack: another port of 127.0.0.1 is the same site, so the cookie goes with a frame of the
    app; at opacity 0.01 over a box of its own, the person's click and keys would go to the app."""
    before = (small / "params.yaml").read_bytes()
    sheet = small / "data/raw/annotations/climb1_face.reviewed.xlsx"
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")  # the person opened the app: the cookie is set
        (tmp_path / "site").mkdir()
        (tmp_path / "site/index.html").write_text(
            '<p>Your name: <input></p><iframe src="' + base + '/videos/climb1_face" style="position: absolute; '
            'top: 0; left: 0; width: 1200px; height: 800px; opacity: 0.01; border: 0"></iframe>')
        with site(tmp_path / "site") as other:
            page.goto(other)
            frame = page.frames[1]
            page.wait_for_load_state("networkidle")  # a framed app would have fetched its video and frames by now
            page.mouse.click(300, 150)
            page.keyboard.type("3s")
            for _ in range(30):
                if sheet.exists():
                    break
                time.sleep(0.1)
            assert not sheet.exists() and (small / "params.yaml").read_bytes() == before
            assert not frame.url.startswith(base) or frame.evaluate("() => window.review") is None  # not the app


STALE_FILLED = """() => { const cells = [...document.querySelectorAll("[data-testid=stale]")];
    return cells.length && cells.every((c) => c.textContent !== "checking…"); }"""


def test_the_videos_list_draws_before_dvc_status_answers_and_fits_the_window(small, page):
    text = (small / "params.yaml").read_text()  # another frame rate: four stages of each video would rerun
    (small / "params.yaml").write_text(text.replace("data:\n  fps: 25\n", "data:\n  fps: 20\n"))
    held = []
    page.route("**/api/stale", lambda route: held.append(route))  # `dvc status` has not answered yet
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")
        page.get_by_test_id("video-row").first.wait_for()
        stale = page.get_by_test_id("stale")
        assert stale.all_inner_texts() == ["checking…"] * 2
        held[0].continue_()
        page.wait_for_function(STALE_FILLED)
        assert stale.all_inner_texts() == ["features-pytorchvideo, frames, labels, persons"] * 2
        table = page.get_by_test_id("videos").bounding_box()
        assert table["x"] + table["width"] <= 1280

        page.unroute("**/api/stale")
        holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom dvc.repo import Repo, lock_repo\n"
                                   "with lock_repo(Repo('.')):\n    print('held', flush=True)\n    time.sleep(60)"],
                                  cwd=small, env=ENV, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline() == "held\n"
            page.reload()
            page.wait_for_function(STALE_FILLED)
            assert stale.all_inner_texts() == ["unknown: DVC is busy (a `dvc repro` holds its lock)"] * 2
        finally:
            holder.kill()
            holder.wait()


def test_an_unknown_video_says_so_and_cancelling_the_climb_prompt_adds_nothing(small, page, tmp_path):
    """An unannotated video with its prediction: the confidence curve has a scale; saved, it can be added to
    the dataset, and cancelling the prompt for its climb sends nothing."""
    entry = make_video(tmp_path / "incoming", climb=5, view="face")
    sh(BOULDERSEG, "add", entry["video"], "--view", "face", cwd=small)
    sh("dvc", "repro", "-q", cwd=small)
    sh(BOULDERSEG, "predict", "--all-unannotated", "--model", "models/x3d_xs/lstm", cwd=small)
    with review(small) as (base, token, _):
        page.goto(f"{base}/?token={token}")
        page.goto(f"{base}/videos/nope")
        error = page.get_by_test_id("error").inner_text()
        assert error == "Cannot show the video 'nope': no video 'nope'. Back to the videos"
        assert page.get_by_test_id("player").count() == 0

        open_video(page, base, "climb5_face")
        assert page.get_by_test_id("track-confidence").get_by_test_id("tick").all_inner_texts() == ["1", "0.5", "0"]
        assert page.get_by_test_id("track-truth").locator(".name").inner_text() == "truth: not saved yet"
        page.get_by_test_id("save").click()
        page.wait_for_function("() => window.review.saved")
        posts = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.get_by_test_id("add").click()
        assert page.get_by_test_id("message").inner_text() == "not added: no climb given"
        assert posts == []
