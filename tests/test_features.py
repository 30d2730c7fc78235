from __future__ import annotations

import numpy as np
import pytest
import zarr

from pipeline import store
from pipeline.errors import BouldersegError
from pipeline.features import extract_features, sample_indices, windows


@pytest.mark.parametrize(("n", "expected"), [
    (40, [[0, 16], [8, 24], [16, 32], [24, 40]]),
    (37, [[0, 16], [8, 24], [16, 32], [21, 37]]),  # last window aligned to the end
    (16, [[0, 16]]),
    (5, [[0, 5]]),  # shorter than a window: one window
])
def test_windows_cover_every_frame(n, expected):
    assert windows(n, window=16, stride=8).tolist() == expected


def test_sample_indices_spread_over_the_window():
    assert sample_indices(8, 24, 4).tolist() == [10, 14, 18, 22]
    assert sample_indices(0, 5, 4).tolist() == [0, 1, 3, 4]


def test_features_store_shape_ranges_and_provenance(bikes_frames, tmp_path):
    out = tmp_path / "v.zarr"
    fs = extract_features(bikes_frames, out, backbone="x3d_xs", pretrained=False, fps=10, window=16,
                          stride=8, batch_size=3, device="cpu")
    assert fs.features.shape == (12, 2048) and fs.features.dtype == np.float32
    group = zarr.open_group(str(out), mode="r")
    assert group["features"].chunks[0] == store.CHUNK_ROWS
    back = store.read(out)
    np.testing.assert_array_equal(back.features, fs.features)
    assert back.frame_range.tolist() == windows(100, window=16, stride=8).tolist()
    a = back.attrs
    assert (a["backbone"], a["feature_dim"], a["fps"], a["window"], a["stride"], a["n_frames"]) == (
        "x3d_xs", 2048, 10, 16, 8, 100)
    assert a["weights"] == {"pretrained": False, "random_init_seed": 0}
    assert a["preprocessing"]["num_frames"] == 4 and a["preprocessing"]["crop_size"] == 160
    assert a["code_version"].startswith("0.1.0+")


def test_features_are_reproducible_and_independent_of_batch_size(bikes_frames, tmp_path):
    kw = dict(backbone="x3d_xs", pretrained=False, fps=10, window=16, stride=8, device="cpu")
    a = extract_features(bikes_frames, tmp_path / "a.zarr", batch_size=5, **kw)
    b = extract_features(bikes_frames, tmp_path / "b.zarr", batch_size=2, **kw)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-4, atol=1e-5)


def test_reading_a_missing_store_says_what_to_run(tmp_path):
    with pytest.raises(BouldersegError, match="not a boulderseg feature store.*boulderseg features"):
        store.read(tmp_path / "nope.zarr")
