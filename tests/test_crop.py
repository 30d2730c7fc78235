"""features.crop climber: each window's clip cut to one square around the persons stage's track, on a synthetic
video of a textured square moving left to right (real encoding, decoding, frames stage, Zarr and backbones)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zarr
from conftest import REPO
from personsio import persons_parquet

from pipeline.core import params
from pipeline.core.errors import BouldersegError
from pipeline.features import backbones, store
from pipeline.features.crop import Crop, person_boxes, source_box, track_boxes, window_boxes
from pipeline.features.extract import cut_clips, extract_features
from pipeline.features.windows import windows

# The source: 320 x 160 at 25 fps, 60 frames; a 32-pixel chequered square at (40 + 4 t, 20). The frames stage stores
# it at 160 x 80 (short side 80), where the square is 16 pixels at (20 + 2 t, 10).
N, SRC_W, SRC_H, SRC_SIDE, FPS = 60, 320, 160, 32, 25
ROWS, COLS, SIDE = 80, 160, 16  # stored frames
MISSED = (0, 5, 10, 15)  # detections that saw nobody: the first window's clip has no box
PIXELS = 8 * 16 * 16  # the pixels backbone's small grey frames (8 of 16 x 16), then their differences


def square(t: int) -> list[float]:
    """The square's box in frame `t`, in stored-frame pixels."""
    return [20.0 + 2 * t, 10.0, 20.0 + 2 * t + SIDE, 10.0 + SIDE]


def write_video(path: Path) -> Path:
    import av

    yy, xx = np.mgrid[:SRC_SIDE, :SRC_SIDE]
    patch = np.where((yy // 8 + xx // 8) % 2, 255, 170).astype(np.uint8)[..., None]  # texture, so flow sees it move
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt, stream.options = SRC_W, SRC_H, "yuv420p", {"crf": "12"}
        for t in range(N):
            image = np.full((SRC_H, SRC_W, 3), 20, np.uint8)
            image[20 : 20 + SRC_SIDE, 40 + 4 * t : 40 + 4 * t + SRC_SIDE] = patch
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def with_tracks(path: Path, boxes: dict[int, list[float] | None], tracks: dict[int, int], n: int) -> Path:
    """`persons_parquet`, its `track` column set to `tracks` on the detections that saw someone."""
    persons_parquet(path, boxes, n)
    table = pq.read_table(path)
    column = [tracks.get(i, 0) if boxes.get(i) is not None else -1 for i in range(n)]
    table = table.set_column(table.schema.get_field_index("track"), "track", pa.array(column, pa.int32()))
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def moving(tmp_path_factory) -> tuple[Path, Path]:
    """(frames directory of the moving square, its persons parquet: detected every 5th frame and the last, one
    track following the square, nobody seen at MISSED)."""
    from pipeline.media.frames import extract_frames

    root = tmp_path_factory.mktemp("moving")
    extract_frames(write_video(root / "moving.mp4"), root / "frames", fps=FPS, short_side=ROWS, workers=1)
    seen = {i: None if i in MISSED else square(i) for i in [*range(0, N, 5), N - 1]}
    return root / "frames", persons_parquet(root / "persons.parquet", seen, N)


CLIMBER = Crop(rule="climber", margin=0.25, short_side=None)
KW = dict(backbone="pixels", family="pixels", pretrained=False, fps=FPS, window=16, stride=8, batch_size=2,
          device="cpu", dtype="float32")


def centroid(grid: np.ndarray) -> np.ndarray:
    """(x, y) in cells of the bright part of a (16, 16) grey grid."""
    weight = np.clip(grid - np.median(grid), 0, None)
    yy, xx = np.mgrid[: grid.shape[0], : grid.shape[1]]
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum() + 0.5


# 1. the crop follows the moving square


@pytest.mark.parametrize("short_side", [None, 120])  # the source as coded (twice the stored frames), or 3/4 of it
def test_each_window_is_cut_to_a_square_that_follows_the_climber_and_feeds_it_centred(moving, tmp_path, short_side):
    frames, persons = moving
    fs, reused = extract_features(frames, tmp_path / "v.zarr", persons=persons,
                                  crop=Crop("climber", 0.25, short_side), **KW)
    group = zarr.open_group(str(tmp_path / "v.zarr"), mode="r")
    crops, index = group["crop_boxes"][:], group["clip_frames"][:]
    n_windows = len(windows(N, window=16, stride=8))
    assert not reused and crops.shape == (n_windows, 4) and crops.dtype == np.float32
    track = track_boxes(persons, N)
    assert np.isnan(track[index[0]]).all() and not np.isnan(track[index[1:]]).all(axis=(1, 2)).any()
    np.testing.assert_array_equal(crops[0], [0, 0, COLS, ROWS])  # no box in its clip: the whole frame
    boxed = crops[1:]
    sides = boxed[:, 2:] - boxed[:, :2]
    np.testing.assert_allclose(sides[:, 0], sides[:, 1])  # squares
    assert (boxed[:, :2] >= 0).all() and (boxed[:, 2] <= COLS).all() and (boxed[:, 3] <= ROWS).all()  # in the frame
    assert (np.diff(boxed[:, 0] + boxed[:, 2]) > 0).all()  # move right with the square
    assert boxed[-1, 2] == COLS and (boxed[1:, 1] == 0).all()  # shifted inside: the last to the right, wide ones down
    for c, clip in zip(boxed, index[1:]):
        seen = track[clip]
        union = [*np.nanmin(seen[:, :2], 0), *np.nanmax(seen[:, 2:], 0)]
        assert c[0] <= union[0] and c[1] <= union[1] and c[2] >= union[2] and c[3] >= union[3]
        longer = max(union[2] - union[0], union[3] - union[1])
        assert c[2] - c[0] == pytest.approx(min(longer * 1.5, ROWS))  # margin 0.25 on each side, at most 80
        for t in clip[clip >= 20]:  # where a detection saw the square: the square itself is inside
            x0, y0, x1, y1 = square(t)
            assert c[0] <= x0 and c[1] <= y0 and c[2] >= x1 and c[3] >= y1
    # what the backbone was fed: each frame of a clip cut to its window's box, the square where it is in the box
    small = fs.features[:, :PIXELS].reshape(n_windows, 8, 16, 16)
    for w, (c, clip) in enumerate(zip(crops, index)):
        for t, grid in zip(clip, small[w]):
            x0, y0, x1, y1 = square(t)
            if x0 < c[0] or x1 > c[2]:  # the square ran ahead of the detections (window 1's first frames)
                continue
            want = ((x0 + x1) / 2 - c[0]) / (c[2] - c[0]) * 16, ((y0 + y1) / 2 - c[1]) / (c[3] - c[1]) * 16
            np.testing.assert_allclose(centroid(grid), want, atol=0.6, err_msg=f"window {w}, frame {t}")
    bright = (small > 0.3).sum((2, 3))  # cells the square lights in each fed frame: 16 / 66 of 16 a side, cut
    assert (bright[0] <= 8).all() and (bright[2:] >= 15).all()  # around it; 1.6 x 3.2 cells of the whole frame
    assert fs.attrs["crop_source"] == {"source_size": [SRC_W, SRC_H] if short_side is None else [240, 120]}


def test_a_whole_frame_window_beside_cut_ones_runs_in_its_own_pass_and_thumbnails_are_square(moving):
    from pipeline.features.crop import crop_frames

    frames, persons = moving
    spec = backbones.get("pixels", "pixels").input
    index = np.array([[0, 2], [20, 22]])
    crops = window_boxes(track_boxes(persons, N), index, (ROWS, COLS), margin=0.25)
    decoded, scale, made = crop_frames(frames, index, short_side=None, size=(ROWS, COLS))
    assert scale == (2.0, 2.0) and made == {"source_size": [SRC_W, SRC_H]}
    [(clips, thumbs)] = list(cut_clips(decoded, index, crops, scale, spec, batch_size=2, thumbnails=True))
    assert isinstance(clips, list) and [c.shape for c in clips] == [(3, 2, 128, 256), (3, 2, 128, 128)]
    assert thumbs.shape == (2, 2, 64, 64) and thumbs.dtype == np.uint8


# 2. the track and the boxes, with exact numbers


def test_track_boxes_interpolate_within_one_track_and_hold_each_side_to_the_gaps_middle(tmp_path):
    boxes = {0: [0, 0, 10, 20], 4: [8, 4, 18, 24],  # track 0, detections 4 apart
             8: [40, 0, 50, 20],  # track 1: nothing interpolated from track 0's box
             12: None, 15: [60, 0, 70, 20], 19: [64, 0, 74, 20]}  # nobody, then track 1 again to the last frame
    track = track_boxes(with_tracks(tmp_path / "p.parquet", boxes, {0: 0, 4: 0, 8: 1, 15: 1, 19: 1}, 20), 20)
    assert track.shape == (20, 4) and track.dtype == np.float32
    np.testing.assert_allclose(track[:5], [[0, 0, 10, 20], [2, 1, 12, 21], [4, 2, 14, 22], [6, 3, 16, 23],
                                           [8, 4, 18, 24]])
    np.testing.assert_allclose(track[5], [8, 4, 18, 24])  # track 0's box held up to the middle of 4 -> 8
    np.testing.assert_allclose(track[6:9], [[40, 0, 50, 20]] * 3)  # then track 1's
    np.testing.assert_allclose(track[9], [40, 0, 50, 20])  # held into the gap to a detection of nobody, up to
    assert np.isnan(track[10:14]).all()  # its middle (10); then nobody, up to the middle of 12 -> 15 (14)
    np.testing.assert_allclose(track[14], [60, 0, 70, 20])
    np.testing.assert_allclose(track[17], [62, 0, 72, 20])  # interpolated within track 1
    np.testing.assert_allclose(track[19], [64, 0, 74, 20])
    same = track_boxes(with_tracks(tmp_path / "q.parquet", boxes, {}, 20), 20)  # one track throughout
    np.testing.assert_allclose(same[6], [24, 2, 34, 22])  # halfway from track 0's box at 4 to the one at 8


def test_track_boxes_refuse_a_parquet_of_other_frames_or_without_a_track(tmp_path):
    with pytest.raises(BouldersegError, match="21 rows, the frames are 20. Rerun the persons stage"):
        track_boxes(persons_parquet(tmp_path / "p.parquet", {0: [0, 0, 1, 1]}, 21), 20)
    old = tmp_path / "old.parquet"
    pq.write_table(pq.read_table(tmp_path / "p.parquet").drop_columns(["track"]), old)
    with pytest.raises(BouldersegError, match=rf"(?s){old}: no climber track in it .*Rerun the persons stage \(`dvc repro`\), "
                                              r"or set features.crop to none"):
        track_boxes(old, 21)


def test_window_boxes_add_the_margin_and_are_capped_and_shifted_inside_the_frame():
    nan = [np.nan] * 4
    boxes = np.array([[10, 20, 30, 60], [20, 20, 40, 60],  # union 30 x 40
                      [190, 40, 200, 60],  # at the right edge
                      [50, 5, 60, 95],  # 90 rows: 135 with the margin, more than the frame's 100
                      nan, nan,
                      [100, 50, 100, 50]], np.float32)  # a point
    index = np.array([[0, 1], [2, 2], [3, 4], [4, 5], [6, 6], [0, 4]])
    got = window_boxes(boxes, index, (100, 200), margin=0.25)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [
        [0, 10, 60, 70],  # side 40 * 1.5 = 60 around (25, 40), shifted right to the left edge
        [170, 35, 200, 65],  # side 20 * 1.5 = 30 around (195, 50), shifted left inside the frame
        [5, 0, 105, 100],  # side capped at the short side, 100, around (55, 50)
        [0, 0, 200, 100],  # no box in the window: the whole frame
        [99.25, 49.25, 100.75, 50.75],  # a point: a side of 1 (* 1.5)
        [0, 10, 60, 70],  # a frame without a box beside one with: that box alone (20 x 40 around (20, 40))
    ])
    np.testing.assert_allclose(window_boxes(boxes, index[:1], (100, 200), margin=0), [[5, 20, 45, 60]])
    np.testing.assert_allclose(window_boxes(boxes, index[:1], (100, 200), margin=2), [[0, 0, 100, 100]])
    np.testing.assert_allclose(window_boxes(boxes, index[:1], (200, 100), margin=0.5), [[0, 0, 80, 80]])


# 3. what the store records, and when it is stale


def test_the_store_records_the_crop_and_the_track_and_a_new_track_makes_it_stale(moving, tmp_path):
    frames, persons = moving
    out = tmp_path / "v.zarr"
    fs, reused = extract_features(frames, out, persons=persons, crop=CLIMBER, **KW)
    back = store.read(out)
    crops = zarr.open_group(str(out), mode="r")["crop_boxes"][:]
    assert not reused and back.attrs["preprocessing"]["crop"] == {"rule": "climber", "margin": 0.25, "short_side": None}
    assert back.attrs["crop_track"] == {"boxes_sha256": hashlib.sha256(crops.tobytes()).hexdigest()}
    assert back.attrs["crop_persons_sha256"] == hashlib.sha256(persons.read_bytes()).hexdigest()  # recorded
    table = pq.read_table(persons)  # the same track in a parquet whose other columns differ: nothing to recompute
    copy = tmp_path / "copy.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("reason"), "reason",
                                    pa.array(["rewritten"] * table.num_rows)), copy)
    assert copy.read_bytes() != persons.read_bytes()
    again, reused = extract_features(frames, out, persons=copy, crop=CLIMBER, **KW)
    assert reused and np.array_equal(again.features, fs.features)
    still = {i: None if i in MISSED else [60.0, 10.0, 76.0, 26.0] for i in [*range(0, N, 5), N - 1]}
    other = persons_parquet(tmp_path / "other.parquet", still, N)  # the climber seen elsewhere
    moved, reused = extract_features(frames, out, persons=other, crop=CLIMBER, **KW)
    now = zarr.open_group(str(out), mode="r")["crop_boxes"][:]
    assert not reused and not np.array_equal(now, crops) and not np.array_equal(moved.features, fs.features)
    np.testing.assert_allclose(now[1:], [[56, 6, 80, 30]] * (len(now) - 1))  # 16 x 1.5 around (68, 18)
    assert moved.attrs["crop_track"]["boxes_sha256"] == hashlib.sha256(now.tobytes()).hexdigest()
    assert extract_features(frames, out, persons=other, crop=CLIMBER, **KW)[1]
    wider, reused = extract_features(frames, out, persons=other, crop=Crop("climber", 0.5, None), **KW)
    assert not reused and wider.attrs["preprocessing"]["crop"]["margin"] == 0.5
    whole, reused = extract_features(frames, out, persons=other, crop=Crop(), **KW)  # crop none: nothing recorded
    assert not reused and "crop" not in whole.attrs["preprocessing"] and "crop_track" not in whole.attrs
    assert "crop_boxes" not in zarr.open_group(str(out), mode="r")
    assert extract_features(frames, out, persons=None, **KW)[1]  # none is the default; the track no part of it
    assert not extract_features(frames, out, persons=other, crop=Crop("climber", 0.5, None), **KW)[1]


# 4. a store cut otherwise is refused; a climber crop without a track says what to do


def train_expect(features: params.Features) -> dict:
    """The `expect` stages/train.py reads each store with, under params whose features section is `features`."""
    from stages.train import store_expect

    p = params.load(REPO / "params.yaml").model_copy(update={"features": features})
    return store_expect(p, "pixels") | {"fps": float(FPS)}


def test_training_refuses_a_store_cut_otherwise_than_the_params_say(moving, tmp_path):
    from pipeline.learning.dataset import load_video

    frames, persons = moving
    kw = KW | {"dtype": "float16"}
    extract_features(frames, tmp_path / "none.zarr", persons=persons, **kw)
    extract_features(frames, tmp_path / "climber.zarr", persons=persons, crop=Crop("climber", 0.25, 720), **kw)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"frame": range(N), "label": "climbing"}).to_csv(labels, index=False)
    climber, none = params.Features(crop="climber", crop_margin=0.25), params.Features()
    assert climber.crop_settings() == {"rule": "climber", "margin": 0.25, "short_side": 720}

    def load(zarr_name: str, features: params.Features):
        return load_video("v", "c", labels_csv=labels, persons_parquet=persons, features_zarr=tmp_path / zarr_name,
                          classes=["climbing"], expect=train_expect(features))

    assert load("climber.zarr", climber).features.shape == (7, 15 * 256)
    assert load("none.zarr", none).features.shape == (7, 15 * 256)
    with pytest.raises(BouldersegError, match=r"none.zarr: stale feature store, made with another configuration \("
                                              r"preprocessing.crop: stored None, expected \{'rule': 'climber', "
                                              r"'margin': 0.25, 'short_side': 720\}\). Rerun `dvc repro`"):
        load("none.zarr", climber)
    with pytest.raises(BouldersegError, match=r"preprocessing.crop: stored \{'rule': 'climber', 'margin': 0.25, "
                                              r"'short_side': 720\}, expected None"):
        load("climber.zarr", none)
    with pytest.raises(BouldersegError, match=r"preprocessing.crop: stored .*'margin': 0.25.*, expected .*'margin': 0.5"):
        load("climber.zarr", params.Features(crop="climber", crop_margin=0.5))


def test_a_climber_crop_without_the_persons_track_or_the_source_says_what_to_do(moving, tmp_path):
    frames, persons = moving
    with pytest.raises(BouldersegError, match=r"pixels cut around the climber needs the tracked person's box in every "
                                              r"frame: pass the persons stage's parquet \(`python -m stages.features"):
        extract_features(frames, tmp_path / "v.zarr", persons=None, crop=CLIMBER, **KW)
    for dropped in (["track"], ["near_box", "track"]):
        old = tmp_path / f"without-{len(dropped)}.parquet"
        pq.write_table(pq.read_table(persons).drop_columns(dropped), old)
        with pytest.raises(BouldersegError, match=rf"(?s){old}: no climber track in it .*features.crop climber cuts "
                                                  r"each clip around the persons stage's track. Rerun the persons stage"):
            extract_features(frames, tmp_path / "v.zarr", persons=old, crop=CLIMBER, **KW)
    moved = tmp_path / "frames"
    shutil.copytree(frames, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    (moved / "manifest.json").write_text(json.dumps(manifest | {"source": str(tmp_path / "gone.mp4")}))
    with pytest.raises(BouldersegError, match=rf"{tmp_path / 'gone.mp4'}: not found, and features.crop climber cuts "
                                              r"the climber from the source video .*Restore it \(`dvc pull`\), or set "
                                              "features.crop to none"):
        extract_features(moved, tmp_path / "v.zarr", persons=persons, crop=CLIMBER, **KW)
    assert not (tmp_path / "v.zarr").exists()
    extract_features(moved, tmp_path / "v.zarr", persons=persons, **KW)  # crop none needs no source


# 5. predict cuts a new video's clips as the bundle was trained, and refuses a store cut otherwise


def test_predict_refuses_a_store_cut_otherwise_than_the_bundles_training_features(moving, tmp_path):
    from pipeline.learning.bundle import check_store
    from stages.train import store_info

    frames, persons = moving
    made = {}
    for name, crop in (("none", Crop()), ("climber", CLIMBER)):
        extract_features(frames, tmp_path / f"{name}.zarr", persons=persons, crop=crop, **KW)
        made[name] = store.attrs(tmp_path / f"{name}.zarr")
    bundles = {name: {"backbone": store_info({"v": a}), "frames": {"short_side": ROWS}} for name, a in made.items()}
    assert bundles["climber"]["backbone"]["preprocessing"]["crop"] == CLIMBER.as_dict()
    for name in made:
        check_store(bundles[name], made[name], store_path=tmp_path / f"{name}.zarr", bundle_dir=tmp_path)
    for store_name, bundle_name in (("none", "climber"), ("climber", "none")):
        with pytest.raises(BouldersegError, match=rf"{store_name}.zarr was not computed as {tmp_path} was trained") as e:
            check_store(bundles[bundle_name], made[store_name], store_path=tmp_path / f"{store_name}.zarr",
                        bundle_dir=tmp_path)
        assert "preprocessing: the store has" in str(e.value) and "'crop': {'rule': 'climber'" in str(e.value)
    # what `boulderseg predict` passes extract_features for a new video: the crop the bundle records
    m = bundles["climber"]["backbone"]
    crop = Crop(**m["preprocessing"].get("crop") or {})
    assert crop == CLIMBER
    fresh = tmp_path / "new.zarr"
    extract_features(frames, fresh, persons=persons, crop=crop, **KW)
    check_store(bundles["climber"], store.attrs(fresh), store_path=fresh, bundle_dir=tmp_path)
    assert Crop(**bundles["none"]["backbone"]["preprocessing"].get("crop") or {}) == Crop()


# 6. every level of backbone under the crop; flow's person boxes relative to it


@pytest.mark.parametrize(("name", "family", "pooling"), [
    ("pixels", "pixels", "stack"), ("x3d_xs", "pytorchvideo", "stack"),  # segment level (x3d_xs: random weights)
    ("flow", "flow", "mean"), ("flow", "flow", "stack")])  # frame level (efficientnet_lite0: 20 s on 2 cores)
def test_segment_and_frame_level_backbones_run_on_cut_clips(moving, tmp_path, name, family, pooling):
    frames, persons = moving
    spec = backbones.get(name, family)
    kw = KW | {"backbone": name, "family": family, "pooling": pooling}
    fs, _ = extract_features(frames, tmp_path / "v.zarr", persons=persons, crop=CLIMBER, **kw)
    assert fs.features.shape == (7, spec.feature_dim(pooling)) and np.isfinite(fs.features).all()
    assert fs.attrs["preprocessing"]["frame_pooling"] == (pooling if spec.level == "frame" else None)
    if name == "x3d_xs":
        return  # its whole-frame run: 3 s more
    whole, _ = extract_features(frames, tmp_path / "w.zarr", persons=persons, **kw)
    a, b = fs.features.astype(np.float32), whole.features.astype(np.float32)
    assert np.corrcoef(a[0], b[0])[0, 1] > 0.95  # no box: the whole frame, decoded from the source, much as the JPG
    assert not np.allclose(a[1:], b[1:], atol=1e-2)


def test_flow_is_fed_the_persons_box_relative_to_the_crop(moving, tmp_path):
    from pipeline.features.backbones.flow import BINS, BOX_GRID, DIM, FRAMES, GRID

    frames, persons = moving
    fs, _ = extract_features(frames, tmp_path / "v.zarr", persons=persons, crop=CLIMBER,
                             **KW | {"backbone": "flow", "family": "flow"})
    per_frame = fs.features.reshape(7, FRAMES, DIM)[:, 1:]  # the first fed frame has no flow
    grid = per_frame[..., : GRID * GRID * BINS].reshape(7, FRAMES - 1, GRID * GRID, BINS)
    box = per_frame[..., GRID * GRID * BINS :].reshape(7, FRAMES - 1, BOX_GRID * BOX_GRID, BINS)
    speed = 2 * 256 / 66  # the square's 2 stored pixels a frame, in a 66-pixel crop fed at 256
    moving_box = box[2:].sum(-1)  # windows 2-6: cut around the square, whose track box is exact
    assert (box[2:].argmax(-1) == 0).all() and (moving_box > speed).all()  # every cell of the box moves right
    assert (moving_box.min(-1) > 0.8 * moving_box.max(-1)).all()  # alike: the box is on the square, not beside it
    assert (grid[2:].sum(-1).min(-1) < 0.2 * moving_box.min(-1)).all()  # the crop holds still background too
    # its box is the track the crop was cut around (inside every square); on whole frames, the persons' boxes
    assert fs.attrs["boxes"]["sha256"] == hashlib.sha256(track_boxes(persons, N).tobytes()).hexdigest()
    whole, _ = extract_features(frames, tmp_path / "w.zarr", persons=persons, **KW | {"backbone": "flow",
                                                                                      "family": "flow"})
    assert whole.attrs["boxes"]["sha256"] == hashlib.sha256(person_boxes(persons, N).tobytes()).hexdigest()
    assert not np.array_equal(track_boxes(persons, N), person_boxes(persons, N), equal_nan=True)  # they differ here


def test_a_crop_box_is_cut_from_the_decoded_frame_rounded_and_never_empty():
    assert source_box(np.array([0, 0, 160, 80], np.float32), (2.25, 2.25), (180, 360)) == (0, 180, 0, 360)  # whole
    assert source_box(np.array([10.2, 4.2, 30.2, 24.2], np.float32), (2.0, 2.0), (160, 320)) == (8, 48, 20, 60)
    assert source_box(np.array([159.9, 79.9, 160, 80], np.float32), (1.0, 1.0), (80, 160)) == (79, 80, 159, 160)


# 7. frame_pooling per backbone or family


def test_frame_pooling_maps_backbones_and_families_with_a_default(tmp_path):
    from test_params import problems_of

    def listed(p):
        p["features"]["backbones"].update(efficientnet=["efficientnet_lite0"], mediapipe=["blazepose"], flow=["flow"])

    for rule, problem in (({"blazepose": "stack"}, "a mapping names `default`"),
                          ({"default": "mean", "dinov2_vits14": "stack"}, "not ['dinov2_vits14']"),  # not listed
                          ({"default": "mean", "mediapipes": "stack"}, "not ['mediapipes']"),
                          ({"default": "max"}, "frame_pooling")):
        lines = problems_of(tmp_path, lambda p: (listed(p), p["features"].update(frame_pooling=rule)))
        assert lines and all(line.startswith("features") and "frame_pooling" in line for line in lines), lines
        assert any(problem in line for line in lines), lines
    f = params.Features(backbones=params.Backbones(efficientnet=["efficientnet_lite0"], mediapipe=["blazepose"],
                                                   flow=["flow"]),
                        frame_pooling={"default": "mean", "mediapipe": "stack", "flow": "stack", "blazepose": "mean"})
    assert f.pooling("blazepose", "mediapipe") == "mean"  # its own entry before its family's
    assert f.pooling("flow", "flow") == "stack"  # its family's
    assert f.pooling("efficientnet_lite0", "efficientnet") == "mean"  # the default
    assert params.Features(frame_pooling="stack").pooling("flow", "flow") == "stack"
    p = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    listed(p)
    p["features"]["frame_pooling"] = {"default": "mean", "flow": "stack"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    assert params.load(tmp_path / "params.yaml").features.pooling("flow", "flow") == "stack"


# 8. what the crop combines with


def test_pose_smoothing_under_a_climber_crop_is_refused_and_skip_static_works(moving, tmp_path):
    frames, persons = moving
    with pytest.raises(BouldersegError, match=r"features.pose_smoothing \(one_euro\) smooths each landmark over the "
                                              r"whole frame, but features.crop climber feeds blazepose one crop per "
                                              r"window: set one of them to none"):
        extract_features(frames, tmp_path / "p.zarr", persons=persons, crop=CLIMBER, pose_smoothing="one_euro",
                         **KW | {"backbone": "blazepose", "family": "mediapipe"})
    assert not (tmp_path / "p.zarr").exists()
    every, _ = extract_features(frames, tmp_path / "a.zarr", persons=persons, crop=CLIMBER, **KW)
    zero, _ = extract_features(frames, tmp_path / "z.zarr", persons=persons, crop=CLIMBER, skip_static=0.0, **KW)
    assert zero.computed.all() and np.array_equal(zero.features, every.features)  # nothing skipped at 0
    motion = zarr.open_group(str(tmp_path / "z.zarr"), mode="r")["motion"][:]
    assert np.isnan(motion[0]) and (motion[1:3] > 5).all()  # 64 x 64 thumbnails: the whole frame, then squares
    assert (motion[4:6] < 1).all()  # the crop moves with the square: what it shows, and feeds, is the same
    crops = zarr.open_group(str(tmp_path / "z.zarr"), mode="r")["crop_boxes"][:]
    assert np.array_equal(crops, zarr.open_group(str(tmp_path / "a.zarr"), mode="r")["crop_boxes"][:])
    high, _ = extract_features(frames, tmp_path / "h.zarr", persons=persons, crop=CLIMBER, skip_static=255.0, **KW)
    assert high.computed.tolist() == [True] + [False] * 6 and (high.features == high.features[0]).all()


def test_verify_names_a_store_cut_otherwise_than_the_params_say(moving, tmp_path):
    from pipeline.views.verify import _features

    frames, persons = moving
    extract_features(frames, tmp_path / "climber.zarr", persons=persons, crop=CLIMBER, **KW)
    extract_features(frames, tmp_path / "none.zarr", persons=persons, **KW)
    committed = params.load(REPO / "params.yaml")

    def crop_problems(store_name: str, **crop) -> list[str]:
        p = committed.model_copy(update={"features": committed.features.model_copy(update=crop)})
        found = _features(p, "v", "pixels", "pixels", "features", tmp_path / store_name, frames, None)
        return [x.what for x in found if "preprocessing.crop" in x.what]

    assert crop_problems("climber.zarr", crop="none") == [
        f"{tmp_path / 'climber.zarr'}: preprocessing.crop: stored {CLIMBER.as_dict()!r}, expected None"]
    assert crop_problems("none.zarr", crop="climber", crop_margin=0.25, crop_short_side=None) == [
        f"{tmp_path / 'none.zarr'}: preprocessing.crop: stored None, expected {CLIMBER.as_dict()!r}"]
    assert crop_problems("climber.zarr", crop="climber", crop_margin=0.25, crop_short_side=None) == []
    assert crop_problems("none.zarr", crop="none") == []
