"""`boulderseg add` / `remove`: checked before anything is written, comments and order of params.yaml kept."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from e2e import BOULDERSEG

BLOCK = """  climb9_face:
    climb: climb9
    view: face
    video: data/raw/videos/climb9_face.mp4
    annotation: data/raw/annotations/climb9_face.xlsx
"""


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copy(root / "data/raw/videos/climb1_face.mp4", incoming / "climb9_face.mp4")
    shutil.copy(root / "data/raw/annotations/climb1_face.xlsx", incoming / "climb9_face.xlsx")
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BOULDERSEG, *args], cwd=root, capture_output=True, text=True)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_add_copies_the_files_and_inserts_only_the_entry_then_remove_restores_the_file(project):
    original = (project / "params.yaml").read_text()
    incoming = project.parent / "incoming"
    r = run(project, "add", str(incoming / "climb9_face.mp4"), str(incoming / "climb9_face.xlsx"), "--climb", "climb9",
            "--view", "face")
    assert r.returncode == 0, r.stderr
    assert "added videos.climb9_face to params.yaml: 250 frames, 6 segments" in r.stdout
    assert "labels@climb9_face, frames@climb9_face, persons@climb9_face, features-efficientnet@climb9_face-efficientnet_lite0" in r.stdout
    heading = "\n# Videos nobody annotated"
    assert (project / "params.yaml").read_text() == original.replace(heading, BLOCK + heading, 1)
    assert (project / "data/raw/videos/climb9_face.mp4").read_bytes() == (incoming / "climb9_face.mp4").read_bytes()
    assert run(project, "validate").returncode == 0

    r = run(project, "remove", "climb9_face", "--delete")
    assert r.returncode == 0, r.stderr
    assert (project / "params.yaml").read_text() == original
    assert not (project / "data/raw/videos/climb9_face.mp4").exists()
    assert not (project / "data/raw/annotations/climb9_face.xlsx").exists()


@pytest.mark.parametrize("case, message", [
    ("bad label", "unknown label 'grimper'"),
    ("not a video", "climb9_face.mp4"),
    ("key", "video key '../x' is not a name"),
    ("taken", "videos.climb1_face exists already"),
])
def test_a_failing_add_changes_nothing(project, case, message):
    incoming = project.parent / "incoming"
    video, sheet, extra = incoming / "climb9_face.mp4", incoming / "climb9_face.xlsx", []
    if case == "bad label":
        from openpyxl import load_workbook

        book = load_workbook(sheet)
        book.active["A2"] = "grimper"
        book.save(sheet)
    elif case == "not a video":
        video.write_bytes(b"not a video at all")
    elif case == "key":
        extra = ["--key", "../x"]
    elif case == "taken":
        extra = ["--key", "climb1_face"]
    before = snapshot(project)
    r = run(project, "add", str(video), str(sheet), "--climb", "climb9", *extra)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert snapshot(project) == before


def test_remove_an_unknown_key_names_the_known_ones(project):
    r = run(project, "remove", "nope")
    assert r.returncode == 1 and "no videos.nope or unannotated.nope; the tables list climb1_face, climb1_profile" in r.stderr


def test_a_video_without_annotation_is_listed_as_unannotated_and_annotating_it_moves_it(project):
    original = (project / "params.yaml").read_text()
    incoming = project.parent / "incoming"
    r = run(project, "add", str(incoming / "climb9_face.mp4"), "--view", "face")
    assert r.returncode == 0, r.stderr
    assert "added unannotated.climb9_face to params.yaml: 250 frames, no annotation" in r.stdout
    assert ("frames-unannotated@climb9_face, persons-unannotated@climb9_face, "
            "features-efficientnet-unannotated@climb9_face-efficientnet_lite0; no stage trains on it.") in r.stdout
    entry = "  climb9_face:\n    view: face\n    video: data/raw/videos/climb9_face.mp4\n"
    assert (project / "params.yaml").read_text() == original.replace("unannotated: {}\n", "unannotated:\n" + entry)

    r = run(project, "add", str(incoming / "climb9_face.mp4"), str(incoming / "climb9_face.xlsx"), "--climb", "climb9",
            "--view", "face")
    assert r.returncode == 0, r.stderr
    heading = "\n# Videos nobody annotated"
    assert (project / "params.yaml").read_text() == original.replace(heading, BLOCK + heading, 1)
    assert run(project, "remove", "climb9_face").returncode == 0
    assert (project / "params.yaml").read_text() == original


def test_in_a_dvc_project_add_tracks_the_copied_video_with_dvc_not_git_and_remove_undoes_it(project):
    from e2e import sh

    sh("git", "init", "-q", cwd=project)
    sh("dvc", "init", "-q", cwd=project)
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-qm", "sample", cwd=project)
    incoming = project.parent / "incoming"
    shutil.copy(project / "data/raw/videos/climb1_face.mp4", incoming / "climb1_face.mp4")
    assert run(project, "add", str(incoming / "climb1_face.mp4"), "--key", "again").returncode == 0  # the sample's
    assert sh("git", "status", "--porcelain", cwd=project).split() == ["M", "params.yaml"]  # own video: git keeps it
    sh("git", "checkout", "params.yaml", cwd=project)

    r = run(project, "add", str(incoming / "climb9_face.mp4"), str(incoming / "climb9_face.xlsx"), "--climb", "climb9")
    assert r.returncode == 0, r.stderr
    assert "data/raw/videos/climb9_face.mp4 is tracked by DVC, not git: `git add data/raw/videos/climb9_face.mp4.dvc " \
        "data/raw/videos/.gitignore`" in r.stdout
    status = sh("git", "status", "--porcelain", "--untracked-files=all", cwd=project).splitlines()
    assert sorted(status) == [" M params.yaml", "?? data/raw/annotations/climb9_face.xlsx",
                              "?? data/raw/videos/.gitignore", "?? data/raw/videos/climb9_face.mp4.dvc"]
    assert (project / "data/raw/videos/.gitignore").read_text() == "/climb9_face.mp4\n"
    assert sh("dvc", "status", "--json", "data/raw/videos/climb9_face.mp4.dvc", cwd=project).strip() == "{}"
    with open(project / "data/raw/videos/climb9_face.mp4", "ab") as f:
        f.write(b"\0")  # DVC sees the video change: it is DVC's to keep
    assert "modified" in sh("dvc", "status", "--json", "data/raw/videos/climb9_face.mp4.dvc", cwd=project)

    assert run(project, "remove", "climb9_face", "--delete").returncode == 0
    assert sh("git", "status", "--porcelain", "--untracked-files=all", cwd=project) == ""
