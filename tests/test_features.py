from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr

from pipeline.core.errors import BouldersegError
from pipeline.features import store
from pipeline.features.backbones import Clip
from pipeline.features.extract import extract_features
from pipeline.features.windows import clip_frames, windows


@pytest.mark.parametrize(("n", "expected"), [
    (40, [[0, 16], [8, 24], [16, 32], [24, 40]]),
    (37, [[0, 16], [8, 24], [16, 32], [21, 37]]),  # last window aligned to the end
    (16, [[0, 16]]),
    (5, [[0, 5]]),  # shorter than a window: one window
])
def test_windows_cover_every_frame(n, expected):
    assert windows(n, window=16, stride=8).tolist() == expected


def test_a_clip_is_centred_on_its_window_and_shifted_inside_the_video():
    ranges = windows(40, window=16, stride=8)  # [0,16) [8,24) [16,32) [24,40)
    index, repeated = clip_frames(ranges, Clip(4, 1 / 25), n_frames=40, fps=25)
    assert index.tolist() == [[6, 7, 8, 9], [14, 15, 16, 17], [22, 23, 24, 25], [30, 31, 32, 33]] and repeated == 0
    index, _ = clip_frames(ranges, Clip(8, 3 / 25), n_frames=40, fps=25)  # 22 frames wide: past the windows
    assert index[0].tolist() == list(range(0, 22, 3)) and index[-1].tolist() == list(range(18, 40, 3))
    assert index[1].tolist() == list(range(5, 27, 3))  # centre 15.5, as the window's
    short, repeated = clip_frames(windows(5, window=16, stride=8), Clip(8, 1 / 25), n_frames=5, fps=25)
    assert short.tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]] and repeated == 3  # a video shorter than the clip says so


KW = dict(backbone="x3d_xs", pretrained=False, fps=10, window=16, stride=8, device="cpu")


def test_features_store_shape_ranges_and_provenance(bikes_frames, tmp_path):
    out = tmp_path / "v.zarr"
    fs, reused = extract_features(bikes_frames, out, batch_size=3, **KW)
    assert not reused and fs.features.shape == (12, 2048) and fs.features.dtype == np.float16
    group = zarr.open_group(str(out), mode="r")
    assert group["features"].chunks[0] == store.CHUNK_ROWS
    back = store.read(out)
    np.testing.assert_array_equal(back.features, fs.features)
    assert back.frame_range.tolist() == windows(100, window=16, stride=8).tolist()
    a = back.attrs
    assert (a["backbone"], a["family"], a["level"], a["feature_dim"], a["fps"], a["window"], a["stride"], a["dtype"],
            a["n_frames"]) == ("x3d_xs", "pytorchvideo", "segment", 2048, 10, 16, 8, "float16", 100)
    assert a["weights"] == {"pretrained": False, "random_init_seed": 0}
    assert a["preprocessing"]["clip"] == {"rule": "paper", "frames": 4, "step": 1, "seconds": 0.4,
                                          "centred": "on the window's centre"}
    assert a["preprocessing"]["crop_size"] == 182 and a["repeated_frames"] == 0 and a["frame_height"] == 136
    clips = zarr.open_group(str(out), mode="r")["clip_frames"][:]  # what each window fed
    assert clips.tolist() == clip_frames(back.frame_range, Clip(4, 0.04), n_frames=100, fps=10)[0].tolist()
    assert len(a["frames_sha256"]) == 64 and a["code_version"].startswith("0.1.0+")


def test_features_are_reproducible_and_independent_of_batch_size(bikes_frames, tmp_path):
    a, _ = extract_features(bikes_frames, tmp_path / "a.zarr", batch_size=5, dtype="float32", **KW)
    b, _ = extract_features(bikes_frames, tmp_path / "b.zarr", batch_size=2, dtype="float32", **KW)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-4, atol=1e-5)
    assert a.attrs["frames_sha256"] == b.attrs["frames_sha256"]  # the frames read, not the order they were read in


def test_a_current_store_is_reused_and_a_stale_one_rebuilt(bikes_frames, tmp_path):
    frames = tmp_path / "frames"
    shutil.copytree(bikes_frames, frames)
    out = tmp_path / "v.zarr"
    first, _ = extract_features(frames, out, **KW)
    assert extract_features(frames, out, **KW)[1]  # same configuration, same frames: reused
    changed, reused = extract_features(frames, out, **KW | {"window": 20})
    assert not reused and changed.attrs["window"] == 20 and len(store.read(out).features) == len(windows(100, window=20, stride=8))
    extract_features(frames, out, **KW)
    weights, reused = extract_features(frames, out, **KW | {"seed": 1})
    assert not reused and weights.attrs["weights"]["random_init_seed"] == 1
    (frames / "000006.jpg").write_bytes((frames / "000050.jpg").read_bytes())  # windows sample 2, 6, 10, …
    edited, reused = extract_features(frames, out, **KW | {"seed": 1})
    assert not reused and edited.attrs["frames_sha256"] != weights.attrs["frames_sha256"]


def test_reading_a_stale_store_is_refused_naming_what_differs(bikes_frames, tmp_path):
    extract_features(bikes_frames, tmp_path / "v.zarr", **KW)
    with pytest.raises(BouldersegError, match=r"v\.zarr: stale feature store, made with another configuration "
                                              r"\(window: stored 16, expected 32; dtype: stored 'float16', expected "
                                              r"'float32'\)\. Rerun `dvc repro` to rebuild it\."):
        store.read(tmp_path / "v.zarr", expect={"window": 32, "stride": 8, "dtype": "float32"})


def test_an_interrupted_write_leaves_nothing_a_rerun_would_trust(bikes_frames, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr.Group, "create_array", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_features(bikes_frames, tmp_path / "v.zarr", **KW)
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temp folder
    monkeypatch.undo()
    assert not extract_features(bikes_frames, tmp_path / "v.zarr", **KW)[1]


def test_reading_a_missing_store_says_what_to_run(tmp_path):
    with pytest.raises(BouldersegError, match="not a boulderseg feature store.*boulderseg stage features"):
        store.read(tmp_path / "nope.zarr")


def test_frames_smaller_than_the_model_wants_are_upscaled_with_one_warning_and_recorded(bikes_frames, tmp_path, capsys):
    from pipeline.features import extract as features

    features._UPSCALE_WARNED.clear()
    for name in ("a", "b"):  # two videos of one stage (data/frames/<video>): one warning
        shutil.copytree(bikes_frames, tmp_path / "frames" / name)
        fs, _ = extract_features(tmp_path / "frames" / name, tmp_path / name / "v.zarr", **KW)  # 136 rows; x3d_xs: 182
        assert fs.attrs["input_scale"] == pytest.approx(182 / 136, abs=1e-4)
    err = capsys.readouterr().err
    assert err.count("warning: x3d_xs resizes frames to a short side of 182, but the stored frames have 136: they "
                     "are upscaled 1.34x. Set frames.short_side to 182 or more") == 1
    pixels, _ = extract_features(bikes_frames, tmp_path / "p.zarr", **(KW | {"backbone": "pixels"}))  # 128 <= 136
    assert pixels.attrs["input_scale"] < 1 and "pixels resizes" not in capsys.readouterr().err
