"""The person filter's search on synthetic footage with the real BlazePose: a small person on a busy wall, found in
tiles and followed as a track; an empty wall and a poster of a person on it kept out; the pieces on their own."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import skimage.data

from pipeline.media.frames import extract_frames
from pipeline.persons.blazepose import BlazePoseDetector
from pipeline.persons.filter import Search, detect_persons, summary
from pipeline.persons.search import look, tiles
from pipeline.persons.tracks import Follower, bridge, foreground, judged

H, W, FPS, N = 720, 960, 25, 60
SEARCH = Search(short_side=720, tiles=(2, 3), track=True, max_gap=2.0, min_foreground=0.2)


def busy_wall(seed: int = 0) -> np.ndarray:
    """(H, W, 3) a wall full of coloured holds."""
    rng = np.random.default_rng(seed)
    wall = np.full((H, W, 3), 200, np.uint8)
    for _ in range(300):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(wall, (int(rng.integers(0, W)), int(rng.integers(0, H))), int(rng.integers(6, 22)), colour, -1)
    return wall


def person(side: int = 200) -> np.ndarray:
    return cv2.resize(skimage.data.astronaut()[..., ::-1], (side, side))


def write(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS), options={"qp": "0"})  # lossless: the same frames each run
        stream.height, stream.width, stream.pix_fmt = H, W, "yuv420p"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode())
    return path


def footage(path: Path, *, moving: bool = True, present: bool = True, judge: bool = False) -> Path:
    """N frames of the busy wall, drifting 1 pixel every 3 frames, with noise; a 200-pixel person climbing across it
    (moving), pinned to it (a poster), or absent; with `judge`, a larger person standing still at the left."""
    rng, wall, p, big = np.random.default_rng(1), busy_wall(), person(), person(420)
    frames = []
    for k in range(N):
        image = wall.copy()
        if judge:
            image[280:700, 0:420] = big
        if present:
            x = 440 + (5 * k if moving else 0)
            image[300:500, x:x + 200] = p
        image = np.roll(image, k // 3, axis=1)
        frames.append(np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8))
    return write(path, frames)


@pytest.fixture(scope="module")
def detector() -> BlazePoseDetector:
    return BlazePoseDetector(conf=0.5)


def run(video: Path, tmp: Path, detector, search: Search) -> object:
    frames = tmp / "frames"
    if not frames.exists():
        extract_frames(video, frames, fps=FPS, short_side=128, workers=1)
    return detect_persons(frames, tmp / "p.parquet", detector=detector, every=5, search=search, fps=FPS)


def test_a_small_person_on_a_busy_wall_is_found_in_tiles_and_followed(detector, tmp_path):
    video = footage(tmp_path / "climb.mp4")
    before = run(video, tmp_path, detector, Search())  # the whole 128-row JPG
    now = run(video, tmp_path, detector, SEARCH)
    assert np.mean(before["person"].to_numpy()) < 0.5
    assert np.mean(now["person"].to_numpy()) >= 0.95
    found = set(now.filter(now["detected"])["found_by"].to_pylist())
    assert {"track"} <= found and found & {"tile2", "tile3"}  # found in tiles, then looked for around its box
    rows = now.to_pandas()
    assert (rows.loc[rows.found_by.isin(["track", "tile2", "tile3"]), "track"] >= 0).all()
    assert rows.foreground.dropna().median() > 0.2
    box = np.stack(rows.near_box.dropna())  # stored-frame pixels (128 rows): the person's 200 of 720 rows
    assert 0 <= box[:, 1].min() and box[:, 3].max() <= 128 and np.median(box[:, 3] - box[:, 1]) > 15
    meta = pq.read_table(tmp_path / "p.parquet").schema.metadata
    assert json.loads(meta[b"search"]) == SEARCH.as_dict()


def test_the_filter_follows_the_climber_not_a_judge_standing_in_full_view(detector, tmp_path):
    table = run(footage(tmp_path / "judged.mp4", judge=True), tmp_path, detector, SEARCH).to_pandas()
    assert table.person.mean() >= 0.95
    seen = table.loc[table.detected & table.near_box.notna()]
    left = np.stack(seen.near_box)[:, 0] * 720 / 128  # x1 in the source's pixels
    assert (left > 430).mean() >= 0.8  # the moving climber (x >= 440), not the judge (x < 420)
    assert (seen.foreground > 0.2).mean() >= 0.8


@pytest.mark.parametrize("what", ["empty", "poster"])
def test_an_empty_wall_and_a_poster_on_it_are_not_a_climber(what, detector, tmp_path, capsys):
    video = footage(tmp_path / "wall.mp4", moving=False, present=what == "poster")
    table = run(video, tmp_path, detector, SEARCH)
    assert np.mean(table["person"].to_numpy()) <= 0.1
    if what == "poster":  # the detector sees the poster; its track never differs from the wall
        rows = table.to_pandas()
        assert (rows.n_persons > 0).sum() >= 5 and "dropped: its track never stands out from the wall" in set(rows.reason)
    summary(table, tmp_path / "wall.parquet")
    err = capsys.readouterr().err
    assert "warning: wall: only" in err and "of its frames show a person to the filter" in err
    assert "persons.track true" in err and "boulderseg inspect video wall" in err


def test_tiles_cover_the_frame_with_overlap():
    for grid in (2, 3):
        rects = list(tiles(720, 960, grid))
        assert len(rects) == grid * grid
        cover = np.zeros((720, 960), int)
        for x, y, w, h in rects:
            assert x >= 0 and y >= 0 and x + w <= 960 and y + h <= 720
            cover[y:y + h, x:x + w] += 1
        assert cover.min() >= 1 and cover.max() >= 2


def test_look_starts_around_the_last_box_and_scans_when_told(detector):
    image = busy_wall()
    image[300:500, 500:700] = person()
    last = np.array([520, 320, 680, 480], np.float32)
    around = look(detector, image, around=[last], grids=(2, 3), scan=False)
    assert around.by == ("track",) and 480 < around.boxes[0][0] < 720
    scanned = look(detector, image, around=[last], grids=(2, 3), scan=True)  # the same person seen twice: one box
    assert len(scanned.conf) == 1 and scanned.by[0] in {"track", "tile2", "tile3"}
    assert look(detector, busy_wall(), around=[], grids=(), scan=True).by == ()


def test_the_follower_keeps_the_climbers_track_across_a_false_detection():
    f = Follower(fps=25, max_gap=2.0)
    climber = np.array([[100, 100, 140, 200]], np.float32)
    assert f.assign(0, climber).tolist() == [0]
    assert f.assign(5, np.array([[600, 50, 640, 150]], np.float32)).tolist() == [1]  # far away: another track
    assert f.assign(10, np.zeros((0, 4), np.float32)).tolist() == []
    assert [b.tolist() for b in f.live(12)] == [[600, 50, 640, 150], [100, 100, 140, 200]]  # most recent first
    two = np.array([[610, 55, 650, 155], [104, 102, 144, 204]], np.float32)
    assert f.assign(15, two).tolist() == [1, 0]  # each live track takes its own box
    assert f.assign(200, climber).tolist() == [2]  # 7.4 s later: a new track


def test_boxes_are_judged_with_their_tracks_neighbours_and_bridged_inside_a_track():
    # track 0: a hold seen for 8 s, then the climber passing by takes its track over for 2 s
    frames = np.r_[np.arange(0, 200, 5), np.arange(200, 250, 5), [0, 5, 10], [300], [20, 25]]
    tracks = np.r_[np.zeros(50, int), [1, 1, 1], [2], [3, 3]]
    fg = np.r_[np.full(40, 0.02), np.full(10, 0.5), [0.01, 0.02, 0.0], [0.6], [0.35, 0.15]]
    whole = np.zeros(56, bool)
    ok, local = judged(tracks, frames, fg, whole, 0.2, fps=25)
    assert not ok[:30].any() and ok[42:50].all()  # the hold's boxes are not the climber's, nor theirs the hold's
    assert not ok[50:53].any()  # the wall
    assert not ok[53]  # one box is no track
    assert ok[54:].all() and local[54] == pytest.approx(0.25)  # two boxes whose median stands out: (0.35 + 0.15) / 2
    assert judged(tracks, frames, fg, whole, None, fps=25)[0].all()
    whole[51] = True  # seen in the whole frame: a person standing still, not holds seen in a tile
    assert judged(tracks, frames, fg, whole, 0.2, fps=25)[0][50:53].all()
    track_at = np.array([0, 0, -1, -1, 0, -1, -1, 3, -1, -1, -1, 2])
    detected = np.arange(0, 60, 5)  # 12 detections, 0.2 s apart at 25 fps
    assert bridge(detected, track_at, fps=25, max_gap=2.0).tolist() == [0, 0, 1, 1] + [0] * 8
    assert not bridge(detected, track_at, fps=25, max_gap=0.5).any()  # 0.6 s apart: longer than max_gap


def test_foreground_tells_a_moving_shape_from_the_drifting_wall():
    wall = cv2.cvtColor(busy_wall(), cv2.COLOR_BGR2GRAY)
    thumbs, boxes = [], []
    for k in range(20):
        image = np.roll(wall, 2 * k, axis=1).copy()  # the camera drifts
        x = 100 + 30 * k
        image[300:500, x:x + 100] = 30  # a dark shape crossing the wall
        thumbs.append(cv2.resize(image, (213, 160), interpolation=cv2.INTER_AREA))
        boxes += [[x, 300, x + 100, 500], [400, 100, 500, 300]]  # the shape, and a patch of wall
    fg = foreground(thumbs, np.repeat(np.arange(20), 2), np.array(boxes, np.float32), 960)
    assert (fg[0::2] > 0.85).all() and (fg[1::2] < 0.1).all()  # measured where the shape is, not where it was
