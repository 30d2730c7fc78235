"""features.pose_smoothing: landmark tracks bridged and smoothed over a video's fed frames (pipeline/features/smoothing.py)."""
from __future__ import annotations

import shutil
import typing

import numpy as np
import pytest
import torch

from pipeline.core.errors import BouldersegError
from pipeline.core.params import Features
from pipeline.features import backbones, smoothing, store
from pipeline.features.extract import (built_model, extract_features, fingerprint, frames_read, pose_windows,
                                       store_config)
from pipeline.features.smoothing import Landmarks, jitter, one_euro, savgol
from pipeline.features.windows import clip_frames, windows
from pipeline.media.probe import frame_paths

FPS, STEP = 25.0, 2  # blazepose's fed frames: every 2nd at 25 fps
SIZE = (256, 455)  # a fed frame's (rows, cols)
POSE = Landmarks(33, 4, box="span")


def poses(n: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """(n, 264) BlazePose vectors of a body drifting 30 px/s, its landmarks jittered by `noise` pixels, all visible."""
    t = np.arange(n)[:, None, None] * STEP / FPS
    base = rng.uniform(100, 200, (1, 33, 2)) + np.array([30.0, 10.0]) * t  # pixels
    xy = (base + rng.normal(0, noise, (n, 33, 2))) / np.array([SIZE[1], SIZE[0]])
    v = np.zeros((n, 2, 33, 4), np.float32)
    lo, hi = xy.min(1, keepdims=True), xy.max(1, keepdims=True)
    v[:, 0, :, :2], v[:, 1, :, :2], v[:, :, :, 2:] = (xy - lo) / (hi - lo), xy, [0.1, 0.9]
    return v.reshape(n, -1)


@pytest.mark.parametrize("method", ["one_euro", "savgol"])
def test_both_filters_cut_jitter_and_keep_constant_and_linear_tracks(method):
    rng, frames = np.random.default_rng(0), np.arange(80) * STEP
    noisy = poses(80, rng, noise=2.0)
    smooth = POSE.smooth(frames, noisy, method=method, fps=FPS, size=SIZE)
    assert jitter(smooth, POSE, SIZE, seen_in=noisy) < jitter(noisy, POSE, SIZE) / 4
    t = frames / FPS
    line, still = (10 + 30 * t)[:, None], np.full((80, 1), 7.0)
    filt = one_euro if method == "one_euro" else savgol
    np.testing.assert_allclose(filt(t, still), still, atol=1e-9)
    lag = np.abs(filt(t, line) - line)[10:]  # after One-Euro's first 0.8 s
    assert lag.max() < (4.0 if method == "one_euro" else 1e-6)  # One-Euro trails a 30 px/s line by about 0.1 s
    clean = poses(80, rng, noise=0.0)
    assert jitter(POSE.smooth(frames, clean, method=method, fps=FPS, size=SIZE), POSE, SIZE) < 0.05


def test_low_visibility_landmarks_are_bridged_and_long_absences_stay_no_person():
    n, frames = 60, np.arange(60) * STEP
    clean = poses(n, np.random.default_rng(1), noise=0.0)
    v = clean.reshape(n, 2, 33, 4).copy()
    v[10:15, :, 5, :2], v[10:15, :, 5, 3] = 0.99, 0.1  # landmark 5 misplaced, barely visible
    v[20:23] = 0  # nobody for 3 fed frames (0.24 s): bridged
    v[35:55] = 0  # nobody for 20 fed frames (1.6 s): stays no person
    out = POSE.smooth(frames, v.reshape(n, -1), method="savgol", fps=FPS, size=SIZE).reshape(n, 2, 33, 4)
    want = clean.reshape(n, 2, 33, 4)
    np.testing.assert_allclose(out[10:15, 1, 5, :2], want[10:15, 1, 5, :2], atol=1e-4)  # the line through, not 0.99
    np.testing.assert_allclose(out[20:23, 1, :, :2], want[20:23, 1, :, :2], atol=1e-4)
    assert (out[35:55] == 0).all() and (out[:35, 1, :, :2] != 0).all() and (out[55:, 1, :, :2] != 0).all()
    xy = out[:, 1, :, :2]  # box-relative positions follow the smoothed absolute ones
    lo, hi = xy.min(1, keepdims=True), xy.max(1, keepdims=True)
    np.testing.assert_allclose(out[:35, 0, :, :2], ((xy - lo) / np.maximum(hi - lo, 1e-3))[:35], atol=1e-5)


def test_a_landmark_never_seen_is_bridged_from_the_detectors_guesses_not_from_no_person_zeros():
    n, frames = 40, np.arange(40) * STEP
    clean = poses(n, np.random.default_rng(3), noise=0.0)
    v = clean.reshape(n, 2, 33, 4).copy()
    v[:, :, 7, 3] = 0.1  # landmark 7 below the visibility threshold throughout: only the detector's guesses
    v[18:21] = 0  # nobody for 3 fed frames: bridged
    out = POSE.smooth(frames, v.reshape(n, -1), method="savgol", fps=FPS, size=SIZE).reshape(n, 2, 33, 4)
    want = clean.reshape(n, 2, 33, 4)
    np.testing.assert_allclose(out[18:21, 1, 7, :2], want[18:21, 1, 7, :2], atol=1e-4)  # the line, not (0, 0)
    np.testing.assert_allclose(out[18:21, 0, :, :2], want[18:21, 0, :, :2], atol=1e-3)  # the box of real landmarks


def test_yolo_keypoints_keep_their_detector_box():
    n, rng = 30, np.random.default_rng(2)
    box = np.array([100.0, 50.0, 220.0, 240.0])  # x0, y0, x1, y1 in pixels of a 320 x 568 fed frame
    kpt = rng.uniform(box[:2], box[2:], (17, 2))
    v = np.zeros((n, 2, 17, 3), np.float32)
    v[:, 0, :, :2], v[:, 1, :, :2], v[:, :, :, 2] = (kpt - box[:2]) / (box[2:] - box[:2]), kpt / [568, 320], 0.8
    out = Landmarks(17, 3, box="detection").smooth(np.arange(n), v.reshape(n, -1), method="one_euro", fps=FPS,
                                                   size=(320, 568))
    np.testing.assert_allclose(out, v.reshape(n, -1), atol=1e-5)


@pytest.fixture(scope="module")
def riders(bikes_frames, tmp_path_factory):
    """24 frames of bikes.mp4 at 10 fps, 136 rows, riders in some: 2 windows, 16 fed frames."""
    out = tmp_path_factory.mktemp("riders")
    for i, path in enumerate(frame_paths(bikes_frames)[8:32]):
        shutil.copy(path, out / f"{i:06d}.jpg")
    return out


@pytest.fixture(scope="module")
def smoothed_store(riders, tmp_path_factory):
    """blazepose over `riders` with savgol, and the same unsmoothed."""
    out = tmp_path_factory.mktemp("pose")
    args = {"backbone": "blazepose", "family": "mediapipe", "fps": 10.0, "dtype": "float32"}
    plain, _ = extract_features(riders, out / "none.zarr", **args)
    smooth, _ = extract_features(riders, out / "savgol.zarr", pose_smoothing="savgol", **args)
    return plain, smooth, out / "savgol.zarr"


def test_a_real_smoothed_store_records_the_setting_and_reuse_refuses_another(smoothed_store, riders):
    plain, smooth, path = smoothed_store
    assert smooth.features.shape == plain.features.shape and not np.array_equal(smooth.features, plain.features)
    assert smooth.attrs["pose_smoothing"] == "savgol" and "pose_smoothing" not in plain.attrs
    spec, paths = backbones.get("blazepose"), frame_paths(riders)
    ranges = windows(len(paths), window=16, stride=8)
    index, _ = clip_frames(ranges, spec.input.clip("paper"), n_frames=len(paths), fps=10.0)
    made = {"frames_sha256": fingerprint(frames_read(paths, index))}

    def config(method: str) -> dict:
        return store_config(spec, n_frames=len(paths), height=136, pretrained=True, weights_dir="weights", seed=0,
                            pooling="stack", clip="paper", fps=10.0, window=16, stride=8, dtype="float32",
                            pose_smoothing=method) | made

    assert store.reuse(path, config("savgol")) is not None
    assert store.reuse(path, config("one_euro")) is None and store.reuse(path, config("none")) is None


def test_unsmoothed_per_frame_path_equals_the_clip_path(smoothed_store, riders):
    plain, _, _ = smoothed_store
    spec, paths = backbones.get("blazepose"), frame_paths(riders)
    index, _ = clip_frames(windows(len(paths), window=16, stride=8), spec.input.clip("paper"), n_frames=len(paths),
                           fps=10.0)
    model = built_model(spec, pretrained=True, weights_dir="weights", seed=0, pooling="stack",
                        device=torch.device("cpu"))
    out = pose_windows(model, paths, index, spec, {}, smoothing="none", pooling="stack", fps=10.0, batch_size=16,
                       workers=1, dev=torch.device("cpu"))
    np.testing.assert_array_equal(out, plain.features)


def test_smoothing_with_skip_static_is_refused_and_other_backbones_ignore_it(bikes_frames, tmp_path):
    with pytest.raises(BouldersegError, match="skip_static"):
        extract_features(bikes_frames, tmp_path / "x.zarr", backbone="blazepose", family="mediapipe",
                         pose_smoothing="one_euro", skip_static=1.0)
    pixels = backbones.get("pixels", "pixels")
    assert store_config(pixels, n_frames=40, height=136, pretrained=False, weights_dir="weights", seed=0,
                        pooling="mean", clip="paper", fps=10.0, window=16, stride=8, dtype="float32",
                        pose_smoothing="savgol")["pose_smoothing"] is None
    assert typing.get_args(Features.model_fields["pose_smoothing"].annotation) == smoothing.METHODS
