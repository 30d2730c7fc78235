"""`boulderseg review` attacked as a local page or user would: framing, methods, the token's way into the
browser, other addresses, silent connections, saves killed mid-way, formulas in the downloads. Real server,
real sockets, real TLS, real signals."""
from __future__ import annotations

import io
import os
import random
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from e2e import BOULDERSEG, ENV
from pipeline.review.listen import HEADER_S
from pipeline.review.save import frame_labels_of, version
from test_review import review, served  # noqa: F401 - served: a fixture

FRAMING = {"x-frame-options": "DENY", "cross-origin-resource-policy": "same-origin"}


def test_every_answer_forbids_framing_and_reads_from_other_sites(served):
    _, client, base, _ = served
    for path in ("/", "/videos/climb1_face", "/report", "/static/app.css", "/api/videos", "/api/videos/nope",
                 "/api/videos/climb1_face/frames/3.jpg"):
        for answer in (client.get(path), httpx.get(base + path)):  # with the token, and refused without it
            assert {k: answer.headers.get(k) for k in FRAMING} == FRAMING, (path, answer.status_code)
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_methods_a_route_does_not_take_are_405(served):
    _, client, _, _ = served
    for method, path in (("DELETE", "/api/videos/climb1_face/segments"), ("OPTIONS", "/api/videos"),
                         ("DELETE", "/"), ("PATCH", "/api/videos/climb1_face")):  # no body, so no Content-Type
        answer = client.request(method, path)
        assert answer.status_code == 405, (method, path, answer.status_code)
    wrong = client.post("/api/videos/climb1_face/segments", json={"base": None, "segments": []})
    assert wrong.status_code == 405


def test_the_browser_opens_with_a_one_time_code_and_the_token_is_on_no_command_line(small, tmp_path):
    said = tmp_path / "browser-argv"
    fake = tmp_path / "browser"  # what $BROWSER names is what `webbrowser` starts: a real process with its argv
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {said}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.Popen([BOULDERSEG, "review", "--port", "0"], cwd=small, env=ENV | {"BROWSER": str(fake)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base, _, token = proc.stdout.readline().strip().partition("/?token=")
        deadline = time.monotonic() + 20
        while not said.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        opened = said.read_text().strip()
        assert token and token not in opened and opened.startswith(f"{base}/?code=")
        first = httpx.get(opened)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert first.cookies[f"boulderseg_review_{base.rsplit(':', 1)[1]}"] == token
        assert httpx.get(opened).status_code == 403  # once only
        assert httpx.get(opened.replace("/?code=", "/api/videos?code=")).status_code == 403  # pages only
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_another_address_without_tls_refuses_to_start(small):
    done = subprocess.run([BOULDERSEG, "review", "--no-browser", "--port", "0", "--host", "0.0.0.0"], cwd=small,
                          env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and done.stdout == "" and "needs TLS" in done.stderr, done.stderr


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return cert, key


def test_another_address_over_tls_answers_only_this_machines_names(small, certificate):
    cert, key = certificate
    with review(small, "--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key)) as (base, token, _):
        assert base.startswith("https://") and "0.0.0.0" not in base
        port = base.rsplit(":", 1)[1]
        local = f"https://127.0.0.1:{port}"
        bearer = {"Authorization": f"Bearer {token}"}
        with httpx.Client(verify=False) as client:  # a self-signed certificate
            for name in (socket.gethostname(), "127.0.0.1"):
                assert client.get(f"{local}/api/videos", headers=bearer | {"Host": f"{name}:{port}"}).status_code == 200
            for name in ("evil.example", "192.0.2.7"):  # a rebinding page names its own host
                assert client.get(f"{local}/api/videos", headers=bearer | {"Host": f"{name}:{port}"}).status_code == 403
            page = client.get(f"{local}/?token={token}")
            assert page.status_code == 303 and "secure" in page.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError):  # no clear HTTP on it
            httpx.get(f"http://127.0.0.1:{port}/api/videos", headers=bearer, timeout=5)


def test_connections_that_send_no_request_are_closed_and_the_server_keeps_answering(served):
    _, client, base, _ = served
    host, port = base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(150)]
    for i, s in enumerate(idle[::2]):  # half of them drip the start of a request and stop
        s.sendall(f"GET /api/videos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-{i}: ".encode())
    assert client.get("/api/videos").status_code == 200
    time.sleep(HEADER_S + 3)
    for s in idle:
        s.settimeout(5)
        assert s.recv(1 << 16) == b""  # closed by the server
        s.close()
    assert client.get("/api/videos").status_code == 200


def test_a_save_killed_at_random_instants_loses_nothing_and_leaves_nothing(small):
    """Half the kills land the moment a save has staged its sheet (so some staging is surely left), half at random
    instants of the request."""
    annotations, scratch = small / "data/raw/annotations", small / ".dvc/tmp/boulderseg-review"
    rng = random.Random(os.getpid())
    left = 0
    for attempt in range(8):
        with review(small) as (base, token, proc):
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            body = {"base": client.get("/api/videos/climb1_face").json()["version"],
                    "segments": [{"label": "climbing", "start": 0, "end": 1 + attempt},
                                 {"label": "reading", "start": 1 + attempt, "end": 10}]}
            saving = threading.Thread(target=_quietly, args=(
                lambda: client.put("/api/videos/climb1_face/segments", json=body),))
            saving.start()
            if attempt % 2:
                deadline = time.monotonic() + 30
                while not list(scratch.glob("*/")) and time.monotonic() < deadline:
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0, 1.0))
            proc.kill()
            saving.join()
            left += len([*scratch.glob("*/"), *annotations.glob(".*review-*")])
        sheet = annotations / "climb1_face.reviewed.xlsx"
        if sheet.exists():  # a whole sheet, one of the versions kept
            assert len(pd.read_excel(sheet, engine="openpyxl")) == 2 and any(
                h.name.endswith(f"-{version(sheet)}.xlsx") for h in (annotations / "history/climb1_face").iterdir())
        entry = yaml.safe_load((small / "params.yaml").read_text())["videos"]["climb1_face"]
        assert (small / entry["annotation"]).is_file()
    assert left >= 1  # the kills at the staged moment left their staging behind
    with review(small) as (base, token, _):  # a new server tidies what they left
        assert httpx.get(f"{base}/api/videos", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert not list(scratch.glob("*/")) and not list(annotations.glob(".*review-*"))


def _quietly(call) -> None:
    try:
        call()
    except httpx.HTTPError:
        pass  # the server was killed under it


def test_names_users_typed_are_text_in_the_downloads_never_formulas(served, tmp_path):
    from openpyxl import load_workbook

    project, client, _, _ = served
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["videos"]["climb1_face"] |= {"climb": '=HYPERLINK("http://evil.example","x")', "view": "+cmd|' /C calc'!A0"}
    (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    csv = pd.read_csv(io.StringIO(client.get("/api/report?format=csv").text), keep_default_na=False)
    row = csv[csv["video"] == "climb1_face"].iloc[0]
    assert row["climb"] == "'=HYPERLINK(\"http://evil.example\",\"x\")" and row["view"] == "'+cmd|' /C calc'!A0"
    book = load_workbook(io.BytesIO(client.get("/api/report?format=xlsx").content))
    cells = [c for r in book.active.iter_rows() for c in r if isinstance(c.value, str) and c.value[:1] in "=+"]
    assert {c.value for c in cells} == {p["videos"]["climb1_face"]["climb"], p["videos"]["climb1_face"]["view"]}
    assert all(c.data_type == "s" for c in cells)


def test_a_segment_holds_the_frames_whose_instant_it_holds():
    labels = frame_labels_of([{"label": "climbing", "start": 0, "end": 4.5}, {"label": "reading", "start": 4.5,
                                                                              "end": 10}],
                             n_frames=250, fps=25, duration=10, classes=["climbing", "reading", "nothing"],
                             default="nothing")
    assert labels.count("climbing") == 113  # frames 0 to 112: 112 / 25 = 4.48 s < 4.5 s
    thirds = frame_labels_of([{"label": "climbing", "start": 0.12, "end": 10}], n_frames=250, fps=25, duration=10,
                             classes=["climbing", "nothing"], default="nothing")
    assert thirds.index("climbing") == 3  # 0.12 * 25 is 3.0000000000000004 in floating point
