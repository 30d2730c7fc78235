"""`boulderseg inspect crops`: the contact sheet of a store cut around the climber (features.crop climber), in a
tiny project: a synthetic video, its frames, a persons parquet whose climber moves at a known speed, and a pixels
store made with crop climber."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from personsio import persons_parquet
from typer.testing import CliRunner

from conftest import REPO
from pipeline.cli import build
from pipeline.features.crop import Crop
from pipeline.features.extract import extract_features
from pipeline.media.frames import extract_frames
from pipeline.views.crops import BOX_COLOUR, CAPTION, TILE

N, EVERY, SEEN = 56, 5, 25  # frames; the detector's stride; the last frame it saw the climber on
ROWS, COLS = 120, 160  # stored frames


def climber(frame: int) -> list[float]:
    """The climber's box at `frame` (x0, y0, x1, y1, stored-frame pixels): 30 wide, moving right a pixel a frame,
    30 high and growing two pixels a frame."""
    return [20.0 + frame, 20.0, 50.0 + frame, 50.0 + 2 * frame]


def write_video(path: Path) -> Path:
    """N frames of noise at 25 fps, 320 x 240 (twice the stored frames)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.height, stream.width, stream.pix_fmt = 2 * ROWS, 2 * COLS, "yuv420p"
        for _ in range(N):
            image = cv2.GaussianBlur(rng.integers(0, 255, (2 * ROWS, 2 * COLS, 3), np.uint8), (0, 0), 2)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """params.yaml listing the pixels backbone for one video `clip`, its frames, persons and crop store."""
    root = tmp_path_factory.mktemp("crops")
    video = write_video(root / "clip.mp4")
    frames = root / "data/frames/clip"
    extract_frames(video, frames, fps=25, short_side=ROWS, workers=1)
    persons = root / "data/persons/clip.parquet"
    persons.parent.mkdir(parents=True)
    persons_parquet(persons, {i: climber(i) if i <= SEEN else None for i in range(0, N, EVERY)}, N)
    extract_features(frames, root / "features/pixels/clip.zarr", backbone="pixels", pretrained=False, persons=persons,
                     crop=Crop(rule="climber", margin=0.25), device="cpu", workers=1)
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["features"]["backbones"] = {"efficientnet": ["efficientnet_lite0"], "pixels": ["pixels"]}
    p["features"]["crop"] = "climber"
    p["videos"] = {"clip": {"climb": "c1", "video": str(video), "annotation": "clip.xlsx"}}
    (root / "params.yaml").write_text(yaml.safe_dump(p))
    return root


def inspect(root: Path, monkeypatch, *args: str):
    monkeypatch.chdir(root)
    return CliRunner().invoke(build(), ["inspect", "crops", "clip", *args])


def expected(root: Path) -> tuple[list[bool], list[float | None]]:
    """Per window: whether it was fed the whole frame, and the climber's share of its crop at its centre frame, from
    the store's boxes and `climber` (None: no box there, the track holding the last box up to the middle of the gap
    to the next detection, or a whole-frame window)."""
    import zarr

    group = zarr.open_group(str(root / "features/pixels/clip.zarr"), mode="r")
    whole, shares = [], []
    for crop, clip in zip(group["crop_boxes"][:], group["clip_frames"][:]):
        centre = int(clip[len(clip) // 2])
        whole.append(crop.tolist() == [0, 0, COLS, ROWS])
        if whole[-1] or centre >= SEEN + (EVERY + 1) // 2:
            shares.append(None)
            continue
        x0, y0, x1, y1 = climber(min(centre, SEEN))
        w = min(x1, crop[2]) - max(x0, crop[0])
        h = min(y1, crop[3]) - max(y0, crop[1])
        shares.append(max(w, 0) * max(h, 0) / ((crop[2] - crop[0]) * (crop[3] - crop[1])))
    return whole, shares


def test_the_sheet_shows_a_tile_per_window_and_the_climbers_share_of_each_crop(project, monkeypatch):
    r = inspect(project, monkeypatch, "--json")
    assert r.exit_code == 0, r.output
    found, (whole, shares) = json.loads(r.stdout), expected(project)
    n = len(shares)
    assert found["backbone"] == "pixels" and found["grid"] == [1, n]  # efficientnet_lite0's store is missing
    sheet = cv2.imread(str(project / "reports/look/clip/crops-pixels.png"))
    assert sheet.shape == (TILE + CAPTION, n * TILE, 3)
    boxed = [bool((np.abs(t.astype(int) - BOX_COLOUR).sum(2) < 60).any()) for t in np.split(sheet[:TILE], n, axis=1)]
    assert [t["whole_frame"] for t in found["tiles"]] == whole and 0 < sum(whole) < n  # nobody after frame 27
    assert [t["share"] for t in found["tiles"]] == pytest.approx(shares)
    assert boxed == [x is not None for x in shares]  # the track box is drawn where the centre frame has one
    seen = [s for s in shares if s is not None]
    assert len(set(seen)) > 1 and all(0.1 < s < 0.5 for s in seen)  # the box's longer side 1.5 times, or the rows
    s = found["summary"]
    assert (s["windows"], s["with_box"], s["whole_frame"]) == (n, len(seen), sum(whole))
    assert (s["share_median"], s["share_min"], s["share_max"]) == pytest.approx((np.median(seen), min(seen), max(seen)))

    r = inspect(project, monkeypatch, "--every", "2", "--out", "every2.png")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        f"clip pixels: {n} windows; the climber fills a median {100 * np.median(seen):.0f}% of the crop (range "
        f"{100 * min(seen):.0f}-{100 * max(seen):.0f}%, {len(seen)} windows with a box); {sum(whole)} whole-frame "
        "windows")
    assert cv2.imread(str(project / "every2.png")).shape == (TILE + CAPTION, len(range(0, n, 2)) * TILE, 3)


def test_a_store_not_cut_around_the_climber_is_refused_with_what_to_do(project, monkeypatch):
    plain = project / "features/efficientnet_lite0/clip.zarr"  # a whole-frame store, under another name
    extract_features(project / "data/frames/clip", plain, backbone="pixels", pretrained=False, device="cpu", workers=1)
    r = inspect(project, monkeypatch, "--backbone", "efficientnet_lite0")
    assert r.exit_code == 1
    assert f"{Path('features/efficientnet_lite0/clip.zarr')}: no crop_boxes" in r.stderr
    assert "features.crop: climber" in r.stderr and "dvc repro" in r.stderr
    r = inspect(project, monkeypatch, "--backbone", "x3d_xs")
    assert r.exit_code == 1 and "features/x3d_xs/clip.zarr: no feature store there" in r.stderr
    assert inspect(project, monkeypatch).exit_code == 0  # the default still finds pixels' store
