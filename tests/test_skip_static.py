"""features.skip_static: windows that barely move reuse the last computed window's features."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydantic
import pytest
import zarr

from pipeline.core import params
from pipeline.features import store
from pipeline.features.extract import StaticSkip, extract_features

KW = dict(backbone="x3d_xs", pretrained=False, fps=10, window=16, stride=8, device="cpu", batch_size=3)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_threshold_that_skips_nothing_computes_the_same_bytes_and_off_records_nothing(bikes_frames, tmp_path):
    off, _ = extract_features(bikes_frames, tmp_path / "off.zarr", **KW)
    zero, reused = extract_features(bikes_frames, tmp_path / "zero.zarr", skip_static=0.0, **KW)
    assert not reused and zero.computed.all() and off.computed is None
    a, b = files(tmp_path / "off.zarr"), files(tmp_path / "zero.zarr")
    assert {k: v for k, v in a.items() if k.startswith("features/")} == {k: v for k, v in b.items()
                                                                         if k.startswith("features/")}
    assert set(b) - set(a) == {k for k in b if k.startswith(("computed/", "motion/"))} != set()
    assert "skip_static" not in off.attrs and zero.attrs["skip_static"] == 0.0
    assert set(off.attrs) == set(zero.attrs) - {"skip_static"}  # off: no key beyond what a store had before it
    motion = zarr.open_group(str(tmp_path / "zero.zarr"), mode="r")["motion"][:]
    assert np.isnan(motion[0]) and (motion[1:] > 0).all()  # real footage moves


def test_a_still_video_computes_its_first_window_and_reuses_it_for_every_other(bikes_frames, tmp_path):
    still = tmp_path / "still"
    still.mkdir()
    for i in range(60):  # one frame, 60 times: 7 windows (the last aligned to the end)
        shutil.copy(bikes_frames / "000000.jpg", still / f"{i:06d}.jpg")
    fs, _ = extract_features(still, tmp_path / "s.zarr", skip_static=0.5, **KW)
    back = store.read(tmp_path / "s.zarr")
    assert back.computed.tolist() == [True] + [False] * 6
    motion = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")["motion"][:]
    assert np.isnan(motion[0]) and (motion[1:] == 0).all()
    assert (back.features == back.features[0]).all()
    full, _ = extract_features(still, tmp_path / "full.zarr", **KW)  # every window computed
    np.testing.assert_allclose(back.features.astype(np.float32), full.features.astype(np.float32), atol=2e-3)


def test_only_the_windows_inside_a_still_stretch_are_reused(bikes_frames, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    source = sorted(bikes_frames.glob("*.jpg"))
    order = source[:40] + [source[39]] * 40 + source[40:60]  # moving, 40 still frames, moving: 100 frames
    for i, src in enumerate(order):
        shutil.copy(src, mixed / f"{i:06d}.jpg")
    fs, _ = extract_features(mixed, tmp_path / "m.zarr", skip_static=0.5, **KW)
    computed = fs.computed.tolist()  # windows start every 8 frames: [32, 48) ... [72, 88)
    inside = [i for i, (lo, hi) in enumerate(fs.frame_range) if lo >= 40 and hi <= 80]
    assert inside and not any(computed[i] for i in inside[1:])  # the first still window differs from the moving one
    assert all(computed[i] for i, (lo, hi) in enumerate(fs.frame_range) if hi <= 40 or lo >= 80)
    full, _ = extract_features(mixed, tmp_path / "full.zarr", **KW)
    last = 0
    for i, ran in enumerate(computed):  # a reused window holds the last computed one's row; a computed one, its own
        last = i if ran else last
        np.testing.assert_array_equal(fs.features[i], fs.features[last])
        if ran:
            np.testing.assert_allclose(fs.features[i].astype(np.float32), full.features[i].astype(np.float32), atol=2e-3)
    assert not np.array_equal(fs.features[inside[0]], fs.features[inside[0] - 1])  # rows do differ
    again, reused = extract_features(mixed, tmp_path / "m.zarr", skip_static=0.5, **KW)
    assert reused
    _, reused = extract_features(mixed, tmp_path / "m.zarr", skip_static=1.5, **KW)
    assert not reused  # another threshold is another store


def test_the_score_is_against_the_last_computed_window_so_slow_drift_is_recomputed():
    skip = StaticSkip(2.0)
    drift = np.stack([np.full((4, 3, 8), level, np.uint8) for level in range(7)])  # 1 grey level more each window
    computed, motion = skip(drift[:3])
    more, motion2 = skip(drift[3:])
    assert computed.tolist() + more.tolist() == [True, False, True, False, True, False, True]
    assert np.isnan(motion[0]) and motion[1:].tolist() == [1, 2] and motion2.tolist() == [1, 2, 1, 2]


def test_a_negative_threshold_is_refused():
    with pytest.raises(pydantic.ValidationError, match="skip_static"):
        params.Features(skip_static=-1)
