"""The flow backbone: DIS optical flow as orientation histograms, on synthetic motion of known direction and speed,
then on real footage through extract_features with the persons stage's boxes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from personsio import persons_parquet

from pipeline.core.errors import BouldersegError
from pipeline.features import backbones
from pipeline.features.backbones.flow import BINS, BOX_GRID, DIM, FRAMES, GRID, FlowFrames
from pipeline.features.crop import person_boxes
from pipeline.features.extract import extract_features, fed_boxes
from pipeline.features.windows import windows

H, W, SPEED = 128, 192, 3.0  # fed frame; pixels per frame
CELLS = GRID * GRID * BINS


def texture(seed: int = 0) -> np.ndarray:
    """(H + 64, W + 64) float32 in [0, 1]: blurred noise, which flow tracks everywhere."""
    noise = np.random.default_rng(seed).random((H + 64, W + 64)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2)
    return (blurred - blurred.min()) / (blurred.max() - blurred.min())


def clip(direction: int, *, inside: tuple[slice, slice] | None = None, speed: float = SPEED) -> torch.Tensor:
    """(1, 3, 3, H, W) grey clip of `texture` moving `speed` pixels a frame towards bin `direction` (0: right, then
    clockwise), the whole frame or only the region `inside` (rows, columns), the rest still."""
    angle = 2 * np.pi * direction / BINS
    still, frames = texture()[32 : 32 + H, 32 : 32 + W], []
    for t in range(3):
        shift = np.float32([[1, 0, speed * t * np.cos(angle)], [0, 1, speed * t * np.sin(angle)]])
        moved = cv2.warpAffine(texture(), shift, (W + 64, H + 64), borderMode=cv2.BORDER_REFLECT)
        moved = moved[32 : 32 + H, 32 : 32 + W]
        frame = still.copy() if inside else moved
        if inside:
            frame[inside] = moved[inside]
        frames.append(frame)
    return torch.from_numpy(np.stack(frames))[None, None].expand(1, 3, 3, H, W).contiguous()


def features(x: torch.Tensor, box: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The second frame's (GRID * GRID, BINS) grid and (BOX_GRID * BOX_GRID, BINS) box histograms."""
    with torch.inference_mode():
        y = FlowFrames()(x, torch.tensor([[box] * x.shape[2]]))[0, 1].numpy()
    return y[:CELLS].reshape(-1, BINS), y[CELLS:].reshape(-1, BINS)


def test_the_histograms_peak_at_the_direction_and_speed_of_uniform_motion():
    for direction in range(BINS):
        grid, box = features(clip(direction), [0.25, 0.25, 0.75, 0.75])
        assert (grid.argmax(1) == direction).all() and (box.argmax(1) == direction).all(), direction
        assert grid.sum(1) == pytest.approx(SPEED, rel=0.1) and box.sum(1) == pytest.approx(SPEED, rel=0.1)


def test_motion_inside_the_persons_box_shows_in_its_histograms_and_in_the_grid_cells_it_covers_alone():
    direction = 3  # down and to the left
    grid, box = features(clip(direction, inside=(slice(0, H // 2), slice(0, W // 2))), [0, 0, 0.5, 0.5])
    assert (box.argmax(1) == direction).all() and box[0].sum() == pytest.approx(SPEED, rel=0.1)  # the cell far from
    assert (box.sum(1) > SPEED / 2).all()  # the still part; flow is smoothed across the edge, so less near it
    cells = grid.reshape(GRID, GRID, BINS)
    assert (cells[0, 0].argmax() == direction) and cells[0, 0].sum() == pytest.approx(SPEED, rel=0.2)
    moving = np.zeros((GRID, GRID), bool)
    moving[: GRID // 2, : GRID // 2] = True
    assert cells[~moving].sum(-1).max() < SPEED / 10  # the still 3/4 of the frame; some flow bleeds across the edge
    _, nobody = features(clip(direction), [np.nan] * 4)
    assert not nobody.any() and nobody.shape == (BOX_GRID * BOX_GRID, BINS)


def test_no_motion_gives_zero_histograms_and_the_clips_first_frame_has_none():
    x = clip(0, speed=0)
    with torch.inference_mode():
        y = FlowFrames()(x, torch.tensor([[[0.1, 0.1, 0.9, 0.9]] * 3]))
    assert y.shape == (1, 3, DIM) and y.abs().max() < 0.05
    with torch.inference_mode():
        assert not FlowFrames()(clip(0), torch.full((1, 3, 4), np.nan))[0, 0].any()


def test_person_boxes_are_interpolated_between_detections_and_held_next_to_one_that_saw_nobody(tmp_path):
    path = persons_parquet(tmp_path / "p.parquet", {0: [0, 0, 10, 20], 4: [40, 0, 50, 20], 8: None, 9: None}, 10)
    boxes = person_boxes(path, 10)
    np.testing.assert_allclose(boxes[2], [20, 0, 30, 20])  # halfway between the detections at 0 and 4
    np.testing.assert_allclose(boxes[6], [40, 0, 50, 20])  # between a person and nobody: the person's box
    assert np.isnan(boxes[8:]).all()
    spec = backbones.get("flow", "flow").input  # 100 x 200 frames -> 256 x 512 fed, nothing cropped
    np.testing.assert_allclose(fed_boxes(np.array([[50, 25, 250, 100]], np.float32), (100, 200), spec),
                               [[0.25, 0.25, 1, 1]])
    with pytest.raises(BouldersegError, match="11 rows, the frames are 10. Rerun the persons stage"):
        person_boxes(persons_parquet(tmp_path / "q.parquet", {0: None, 10: None}, 11), 10)


def test_flow_features_of_real_footage_fill_a_store_that_records_how_they_were_made(bikes_frames, tmp_path):
    n = len(list(bikes_frames.glob("*.jpg")))
    seen = {i: [100, 20, 220, 130] for i in range(0, n, 5)} | {n - 1: None}  # the detector's frames, in pixels
    persons = persons_parquet(tmp_path / "p.parquet", seen, n)
    kw = dict(backbone="flow", family="flow", persons=persons, pretrained=False, fps=10, window=16, stride=8,
              batch_size=2, device="cpu")
    fs, reused = extract_features(bikes_frames, tmp_path / "v.zarr", **kw)
    n_windows = len(windows(n, window=16, stride=8))
    assert not reused and fs.features.shape == (n_windows, FRAMES * DIM) and np.isfinite(fs.features).all()
    per_frame = fs.features.astype(np.float32).reshape(n_windows, FRAMES, DIM)
    assert not per_frame[:, 0].any() and (per_frame[:, 1:, :CELLS].sum(-1) > 0).all()  # the footage moves
    assert (per_frame[:, 1:, CELLS:].sum(-1) > 0).mean() > 0.5  # and so does the inside of the box
    weights, clip_ = fs.attrs["weights"], fs.attrs["preprocessing"]["clip"]
    assert (weights["dis_preset"], weights["grid"], weights["box_grid"], weights["bins"]) == ("fast", GRID, BOX_GRID,
                                                                                              BINS)
    assert (clip_["frames"], clip_["step"]) == (FRAMES, 1) and fs.attrs["boxes"]["column"] == "near_box"
    assert extract_features(bikes_frames, tmp_path / "v.zarr", **kw)[1]
    moved = persons_parquet(tmp_path / "m.parquet", {i: [0, 0, 60, 60] for i in range(0, n, 5)} | {n - 1: None}, n)
    assert not extract_features(bikes_frames, tmp_path / "v.zarr", **kw | {"persons": moved})[1]


def test_flow_without_the_persons_boxes_says_what_to_pass(bikes_frames, tmp_path):
    with pytest.raises(BouldersegError, match=r"flow needs the tracked person's box in every frame: pass the persons "
                                              r"stage's parquet \(`python -m stages.features ... --persons"):
        extract_features(bikes_frames, tmp_path / "v.zarr", backbone="flow", family="flow", pretrained=False, fps=10)
