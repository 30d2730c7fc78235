"""`boulderseg review`'s server and API, run for real (uvicorn on a loopback port, HTTP over sockets) on the
two-video sample run: who may talk to it, what it serves, and what a save writes."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from e2e import BOULDERSEG, ENV, sh
from pipeline.annotations.sample import make_video
from pipeline.views.phases import report as phase_report


@contextmanager
def review(project: Path, *args: str) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """`boulderseg review --no-browser --port 0` in `project`: (base URL, token, process)."""
    proc = subprocess.Popen([BOULDERSEG, "review", "--no-browser", "--port", "0", *args], cwd=project, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith(("http://", "https://")), proc.stderr.read() if proc.poll() is not None else url
        base, _, token = url.partition("/?token=")
        yield base, token, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def served(small):
    with review(small) as (base, token, _):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            yield small, client, base, token


def put(client: httpx.Client, key: str, segments: list[dict], base: str | None = "current") -> httpx.Response:
    """A save as the page makes it: on the version the page was served (`base="current"`: the one saved now)."""
    if base == "current":
        base = client.get(f"/api/videos/{key}").json()["version"]
    return client.put(f"/api/videos/{key}/segments", json={"base": base, "segments": segments})


def labels_of(project: Path, key: str) -> list[str]:
    return pd.read_csv(project / "data/labels" / f"{key}.csv")["label"].tolist()


def stage_labels(project: Path, key: str, tmp_path: Path) -> list[str]:
    """The labels stage's own command on the project as it now stands: its per-frame labels of `key`."""
    out = tmp_path / f"{key}-{len(list(tmp_path.iterdir()))}.csv"
    sh(BOULDERSEG, "stage", "labels", key, str(out), cwd=project)
    return pd.read_csv(out)["label"].tolist()


def test_the_first_line_is_the_address_and_every_request_needs_the_token(small):
    with review(small) as (base, token, _):
        assert base.startswith("http://127.0.0.1:") and len(token) >= 32
        port = base.rsplit(":", 1)[1]
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": f"boulderseg_review_{port}=wrong"},
                        {"Cookie": f"boulderseg_review={token}"},  # the name without a port
                        {"Cookie": f"boulderseg_review_{int(port) + 1}={token}"}):  # another port's
            for path in ("/", "/videos/climb1_face", "/api/videos", "/api/videos/climb1_face/frames/0.jpg"):
                assert httpx.get(base + path, headers=headers).status_code == 403, (path, headers)
        assert httpx.get(f"{base}/api/videos?token=wrong").status_code == 403
        assert httpx.get(f"{base}/api/videos", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(f"{base}/api/videos?token={token}").status_code == 200
        first = httpx.get(f"{base}/?token={token}")  # the printed address: the cookie is set, the token leaves the URL
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert first.headers["set-cookie"].startswith(f"boulderseg_review_{port}={token};")
        assert httpx.get(f"{base}//evil.example/?token={token}").headers["location"] == "/evil.example/"  # a path
        assert "httponly" in first.headers["set-cookie"].lower() and "samesite=strict" in first.headers["set-cookie"].lower()
        with httpx.Client(base_url=base, cookies=first.cookies) as browser:
            assert browser.get("/").status_code == 200 and browser.get("/api/videos").status_code == 200


def test_a_request_addressed_to_another_host_is_refused_even_with_the_token(served):
    _, client, base, _ = served
    port = base.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "10.0.0.1",
                 f"[::1]evil.example:{port}", f"user@127.0.0.1:{port}", f"127.0.0.1:{port}/x"):
        assert client.get("/api/videos", headers={"Host": host}).status_code == 403, host
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert client.get("/api/videos", headers={"Host": host}).status_code == 200, host


def test_keys_that_are_paths_or_not_registered_videos_are_404(served):
    project, client, _, _ = served
    (project / "data/frames/secret").mkdir()
    (project / "data/frames/secret/000000.jpg").write_bytes(b"not yours")
    for path in ("/api/videos/..%2F..%2Fetc", "/api/videos/..", "/api/videos/secret", "/api/videos/nope/frames/0.jpg",
                 "/api/videos/secret/frames/0.jpg", "/api/videos/climb1_face/frames/250.jpg",
                 "/api/videos/%2e%2e/frames/0.jpg"):
        assert client.get(path).status_code == 404, path
    assert client.put("/api/videos/..%2Fx/segments", json={"base": None, "segments": []}).status_code == 404


def test_an_oversized_body_is_refused_with_413_and_changes_nothing(served):
    project, client, _, _ = served
    before = (project / "params.yaml").read_bytes()
    big, json_type = b"[" + b" " * (2 << 20) + b"]", {"Content-Type": "application/json"}
    assert client.put("/api/videos/climb1_face/segments", content=big, headers=json_type).status_code == 413
    chunks = (b" " * 65536 for _ in range(40))  # no Content-Length: counted as it arrives
    assert client.put("/api/videos/climb1_face/segments", content=chunks, headers=json_type).status_code == 413
    assert (project / "params.yaml").read_bytes() == before
    assert not (project / "data/raw/annotations/climb1_face.reviewed.xlsx").exists()


def test_the_api_serves_the_videos_tracks_and_frames_the_stages_wrote(served):
    project, client, _, _ = served
    listed = client.get("/api/videos").json()
    assert listed["classes"] == ["climbing", "brushing", "reading", "stopwatch", "nothing"]
    rows = {r["key"]: r for r in listed["videos"]}
    assert set(rows) == {"climb1_face", "climb2_face"} and rows["climb1_face"]["status"] == "annotated"
    truth = labels_of(project, "climb1_face")
    assert rows["climb1_face"]["phase_shares"] == {c: round(truth.count(c) / len(truth), 4) for c in listed["classes"]
                                                    if c in truth}
    assert rows["climb1_face"]["stale"] is None and set(rows["climb1_face"]["accuracy"]) == {
        "x3d_xs + linear", "x3d_xs + lstm"}
    video = client.get("/api/videos/climb1_face").json()
    assert video["frames"] == len(truth) == len(video["person"]) and video["fps"] == 25
    expanded = [s["label"] for s in video["tracks"]["truth"] for _ in range(s["start"], s["end"])]
    assert expanded == truth and set(video["tracks"]) == {"truth", "x3d_xs + linear", "x3d_xs + lstm"}
    nobody = [i for i, seen in enumerate(video["person"]) if not seen]
    head = [s["label"] for s in video["tracks"]["x3d_xs + lstm"] for _ in range(s["start"], s["end"])]
    assert nobody and {head[i] for i in nobody} == {"nothing"}  # a head's frames with nobody in them
    jpg = client.get("/api/videos/climb1_face/frames/17.jpg")
    assert jpg.headers["content-type"] == "image/jpeg"
    assert jpg.content == (project / "data/frames/climb1_face/000017.jpg").read_bytes()


def test_a_save_reads_back_through_the_labels_stage_as_sent_and_keeps_every_version(served, tmp_path):
    project, client, _, _ = served
    fps, n = 25, 250
    first = [{"label": "reading", "start": 0, "end": 37 / fps}, {"label": "climbing", "start": 37 / fps, "end": 4.0},
             {"label": "brushing", "start": 4.0, "end": 131 / fps}, {"label": "climbing", "start": 131 / fps, "end": 10}]
    r = put(client, "climb1_face", first)
    assert r.status_code == 200, r.text
    shown = ["reading"] * 37 + ["climbing"] * 63 + ["brushing"] * 31 + ["climbing"] * 119
    sheet = project / "data/raw/annotations/climb1_face.reviewed.xlsx"
    assert r.json() | {"version": None, "kept": None} == {
        "sheet": "data/raw/annotations/climb1_face.reviewed.xlsx", "counts": dict(Counter(shown)),
        "seconds": {c: round(k / fps, 2) for c, k in Counter(shown).items()}, "version": None, "kept": None,
        "replaced": None}
    assert r.json()["version"] == client.get("/api/videos/climb1_face").json()["version"]
    assert (project / r.json()["kept"]).read_bytes() == sheet.read_bytes()
    entry = yaml.safe_load((project / "params.yaml").read_text())["videos"]["climb1_face"]
    assert entry["annotation"] == "data/raw/annotations/climb1_face.reviewed.xlsx"
    assert stage_labels(project, "climb1_face", tmp_path) == shown
    second = [{"label": "nothing", "start": 0, "end": 10}]
    again = [put(client, "climb1_face", second).json() for _ in range(2)]  # `s` twice: one more version, not two
    assert again[0]["version"] == again[1]["version"] != r.json()["version"]
    assert again[0]["replaced"] == r.json()["kept"] and again[1]["replaced"] is None
    history = sorted((project / "data/raw/annotations/history/climb1_face").iterdir())
    assert [pd.read_excel(h)["label"].tolist() for h in history] == [
        ["lecture", "grimpe", "brossage", "grimpe"], ["rien"]]  # the annotators' words, oldest first
    text = (project / "params.yaml").read_text()  # params.yaml back to the annotators' sheet (a checkout)
    (project / "params.yaml").write_text(text.replace("climb1_face.reviewed.xlsx", "climb1_face.xlsx"))
    assert put(client, "climb1_face", second).status_code == 200  # the same labels: the entry is pointed again
    assert yaml.safe_load((project / "params.yaml").read_text())["videos"]["climb1_face"]["annotation"] == \
        "data/raw/annotations/climb1_face.reviewed.xlsx"
    assert stage_labels(project, "climb1_face", tmp_path) == ["nothing"] * n
    assert "labels@climb1_face" in sh("dvc", "status", cwd=project)


def test_concurrent_saves_on_one_version_save_one_and_refuse_the_others(served, tmp_path):
    project, client, _, _ = served
    versions = [[{"label": "climbing", "start": 0, "end": k / 5}, {"label": "reading", "start": k / 5, "end": 10}]
                for k in range(1, 9)]
    answers = []
    threads = [threading.Thread(target=lambda v=v: answers.append(put(client, "climb2_face", v, base=None)))
               for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200] + [409] * (len(versions) - 1)
    won = next(r.json() for r in answers if r.status_code == 200)
    assert {r.json()["current"] for r in answers if r.status_code == 409} == {won["version"]}
    assert "saved from another page" in next(r.json()["error"] for r in answers if r.status_code == 409)
    read = stage_labels(project, "climb2_face", tmp_path)
    assert read in [["climbing"] * (5 * k) + ["reading"] * (250 - 5 * k) for k in range(1, 9)]
    assert len(list((project / "data/raw/annotations/history/climb2_face").iterdir())) == 1


def test_a_bad_segmentation_is_refused_naming_the_problem_and_nothing_is_written(served):
    project, client, _, _ = served
    before = (project / "params.yaml").read_bytes()
    for segments, problem in (([{"label": "dancing", "start": 0, "end": 10}], "not one of climbing"),
                              ([{"label": "climbing", "start": 5, "end": 2}], "not a span"),
                              ([{"label": "climbing", "start": 0, "end": 6}, {"label": "reading", "start": 5,
                                                                             "end": 10}], "before the one before"),
                              ([{"label": "climbing", "start": None, "end": 1}], "numbers of seconds"),
                              ([], "no segments"),
                              ([{"label": "climbing", "start": 0, "end": 1e308}], "not a span within the video"),
                              ([{"label": "climbing", "start": 1e300, "end": 1e301}], "not a span within")):
        r = put(client, "climb1_face", segments, base=None)
        assert r.status_code == 422 and problem in r.json()["error"], r.text
    json_type = {"Content-Type": "application/json"}
    for body, problem in ((b"{not json", "not JSON"),
                          (b'[{"label": "climbing", "start": 0, "end": 10}]', "expected {"),  # the old body
                          (b'{"segments": [{"label": "climbing", "start": 0, "end": 1e999}]}', "not finite"),
                          (b'{"segments": [{"label": "climbing", "start": 0, "end": 1' + b"0" * 400 + b'}]}',
                           "too long"),
                          (b'{"segments": [{"label": "climbing", "start": 0, "end": NaN}]}', "NaN"),
                          (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
                          (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply")):
        r = client.put("/api/videos/climb1_face/segments", content=body, headers=json_type)
        assert r.status_code == 400 and problem in r.json()["error"], (body[:40], r.text)
    assert (project / "params.yaml").read_bytes() == before
    assert not list((project / "data/raw/annotations").glob("climb1_face.reviewed*"))


def test_the_report_gives_predicts_figures_from_the_truth_and_downloads_as_csv_and_xlsx(served, tmp_path):
    project, client, _, _ = served
    got = client.get("/api/report").json()
    assert [r["video"] for r in got["rows"]] == ["climb1_face", "climb2_face"]
    for row in got["rows"]:
        manifest = json.loads((project / "data/frames" / row["video"] / "manifest.json").read_text())
        person = pd.read_parquet(project / "data/persons" / f"{row['video']}.parquet")["person"].tolist()
        expected = phase_report(labels_of(project, row["video"]), person, fps=25, duration=manifest["duration_s"])
        assert row["source"] == "truth" and row["attempts"] == expected["attempts"]
        assert row["time_to_first_attempt_s"] == expected["time_to_first_attempt_s"]
        assert row["reading_before_attempt_s"] == expected["reading_before_attempt_s"]
        assert row["phases_s"] == {c: expected["phases"].get(c, {}).get("total_s", 0.0) for c in got["classes"]}
    csv = client.get("/api/report?format=csv")
    assert "attachment" in csv.headers["content-disposition"]
    (tmp_path / "r.csv").write_text(csv.text)
    (tmp_path / "r.xlsx").write_bytes(client.get("/api/report?format=xlsx").content)
    for table in (pd.read_csv(tmp_path / "r.csv"), pd.read_excel(tmp_path / "r.xlsx")):
        assert table["video"].tolist() == ["climb1_face", "climb2_face"]
        assert table["attempts"].tolist() == [r["attempts"] for r in got["rows"]]
    out = tmp_path / "report.html"
    assert sh(BOULDERSEG, "report", "--html", str(out), cwd=project).startswith(f"{out}: 2 video(s), 2 from")
    page = out.read_text()
    embedded = json.loads(page.split("id='data'>")[1].split("</script>")[0])
    assert embedded == got["rows"] and "climb2_face" in page


def test_an_unannotated_videos_prediction_is_corrected_saved_and_added_to_the_dataset(small, tmp_path):
    entry = make_video(tmp_path / "incoming", climb=5, view="face")
    sh(BOULDERSEG, "add", entry["video"], "--view", "face", cwd=small)
    sh("dvc", "repro", "-q", cwd=small)  # its frames, persons and features
    sh(BOULDERSEG, "predict", "--all-unannotated", "--model", "models/x3d_xs/lstm", cwd=small)
    predicted = pd.read_csv(small / "data/unannotated/predicted/climb5_face/frames.csv")
    with review(small) as (base, token, _), httpx.Client(base_url=base, timeout=60,
                                                         headers={"Authorization": f"Bearer {token}"}) as client:
        row = next(r for r in client.get("/api/videos").json()["videos"] if r["key"] == "climb5_face")
        assert row["status"] == "predicted" and row["mean_confidence"] == round(predicted["confidence"].mean(), 4)
        video = client.get("/api/videos/climb5_face").json()
        assert not video["annotated"] and "truth" not in video["tracks"] and len(video["confidence"]) == 250
        assert [s["label"] for s in video["tracks"]["prediction"] for _ in range(s["start"], s["end"])] == \
            predicted["label"].tolist()
        assert client.post("/api/videos/climb5_face/add", json={"climb": "climb5"}).json()["error"].startswith(
            "save climb5_face's phases first")
        corrected = [{"label": "reading", "start": 0, "end": 2}, {"label": "climbing", "start": 2, "end": 10}]
        assert put(client, "climb5_face", corrected).status_code == 200
        assert "unannotated" in yaml.safe_load((small / "params.yaml").read_text())  # saving alone moves nothing
        refused = client.post("/api/videos/climb5_face/add", json={})
        assert refused.status_code == 422 and "which climb" in refused.json()["error"]
        assert "--climb" not in refused.json()["error"]  # a coach never sees the command line
        added = client.post("/api/videos/climb5_face/add", json={"climb": "climb5"})
        assert added.status_code == 200, added.text
    p = yaml.safe_load((small / "params.yaml").read_text())
    assert p["videos"]["climb5_face"] == {"climb": "climb5", "view": "face", "video": "data/raw/videos/climb5_face.mp4",
                                          "annotation": "data/raw/annotations/climb5_face.reviewed.xlsx"}
    assert "climb5_face" not in (p.get("unannotated") or {})
    assert "labels@climb5_face" in sh("dvc", "status", cwd=small)
    assert stage_labels(small, "climb5_face", tmp_path) == ["reading"] * 50 + ["climbing"] * 200


def test_a_save_that_fails_leaves_the_old_sheet_and_params_as_they_were(served):
    """A save whose sheet would read back otherwise than shown (here `labels.merge` folds stopwatch into nothing,
    so a stopwatch phase cannot be written) fails, and the saved sheet, its previous version and params.yaml stay."""
    project, client, _, _ = served
    for segments in ([{"label": "nothing", "start": 0, "end": 10}], [{"label": "reading", "start": 0, "end": 10}]):
        assert put(client, "climb1_face", segments).status_code == 200
    annotations = project / "data/raw/annotations"
    sheets = {p: p.read_bytes() for p in [*annotations.glob("climb1_face.reviewed*"), *annotations.rglob("history/*/*")]}
    text = (project / "params.yaml").read_text().replace("merge: {}", "merge: {stopwatch: nothing}")
    (project / "params.yaml").write_text(text)
    r = put(client, "climb1_face", [{"label": "stopwatch", "start": 0, "end": 10}])
    assert r.status_code == 422 and "would read back with 250 frame(s) labelled otherwise" in r.json()["error"]
    assert {p: p.read_bytes() for p in [*annotations.glob("climb1_face.reviewed*"),
                                        *annotations.rglob("history/*/*")]} == sheets
    assert (project / "params.yaml").read_text() == text
    assert not list((project / ".dvc/tmp/boulderseg-review").iterdir())  # no staging left behind


def test_a_change_from_another_local_site_is_refused(served):
    """Cookies are sent to every port of 127.0.0.1, so a page another local server serves could post with them:
    a change must be JSON (which no form or simple request sends) and not come from another site."""
    project, client, _, _ = served
    before = (project / "params.yaml").read_bytes()
    body = '[{"label": "climbing", "start": 0, "end": 10}]'
    plain = client.put("/api/videos/climb1_face/segments", content=body, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    forged = client.put("/api/videos/climb1_face/segments", content=body,
                        headers={"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"})
    assert forged.status_code == 403
    assert client.post("/api/videos/climb1_face/add", content="{}", headers={"Content-Type": "text/plain"}
                       ).status_code == 415
    assert (project / "params.yaml").read_bytes() == before


def test_the_videos_list_answers_without_dvc_and_the_stale_stages_follow_or_say_dvc_is_busy(served):
    project, client, _, _ = served
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom dvc.repo import Repo, lock_repo\n"
                               "with lock_repo(Repo('.')):\n    print('held', flush=True)\n    time.sleep(60)"],
                              cwd=project, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = client.get("/api/videos")
        assert r.status_code == 200 and all(row["stale"] is None for row in r.json()["videos"])
        assert client.get("/api/stale").json() == {"stale": None, "reason": "DVC is busy (a `dvc repro` holds its lock)"}
    finally:
        holder.kill()
        holder.wait()
    assert client.get("/api/stale").json() == {"stale": {"climb1_face": [], "climb2_face": []}}
    (project / "data/raw/annotations/climb2_face.xlsx").write_bytes(b"")  # a stage of climb2_face is stale now
    stale = client.get("/api/stale").json()["stale"]
    assert stale["climb1_face"] == [] and "labels" in stale["climb2_face"]
