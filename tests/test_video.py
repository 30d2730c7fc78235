from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import pytest

from pipeline.errors import BouldersegError
from pipeline.video import VideoInfo, extract_frames, output_frame_count, probe, source_indices


def test_probe_reads_real_footage(bikes):
    info = probe(bikes)
    assert (info.n_frames, info.fps, info.width, info.height) == (250, 25, 640, 272)


def test_resampling_maps_each_output_time_to_the_source_frame_shown_then():
    ntsc = VideoInfo(Path("x"), n_frames=120, fps=Fraction(30000, 1001), width=1, height=1)
    assert output_frame_count(ntsc, 25) == 101  # 120 / 29.97 s = 4.004 s -> frames at 0, 0.04, … 4.0
    idx = source_indices(ntsc, 25)
    assert idx[:6].tolist() == [0, 1, 2, 3, 4, 5] and idx[5:7].tolist() == [5, 7] and idx[-1] == 119
    same = VideoInfo(Path("x"), n_frames=250, fps=Fraction(25), width=1, height=1)
    assert source_indices(same, 25).tolist() == list(range(250))


def test_extract_frames_native_fps_exact_count_and_names(bikes, tmp_path):
    out = tmp_path / "f"
    assert extract_frames(bikes, out, fps=25, height=None) == 250
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == "000000.jpg" and names[-1] == "000249.jpg" and len(names) == 250
    assert cv2.imread(str(out / "000100.jpg")).shape == (272, 640, 3)
    assert not list(tmp_path.glob(".f.tmp-*"))


def test_extract_frames_resamples_and_resizes(bikes_frames):
    paths = sorted(bikes_frames.glob("*.jpg"))
    assert len(paths) == 100  # 10 s at 10 fps
    assert cv2.imread(str(paths[0])).shape == (136, 320, 3)


def test_unreadable_video_names_the_file_and_leaves_no_output(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    out = tmp_path / "frames"
    with pytest.raises(BouldersegError, match=r"broken\.mp4: cannot decode this video .*Re-export"):
        extract_frames(bad, out, fps=25)
    assert not out.exists() and not list(tmp_path.glob(".frames.tmp-*"))


def test_rerun_after_a_crash_replaces_stale_temp_output(bikes, tmp_path):
    out = tmp_path / "f"
    stale = tmp_path / ".f.tmp-99999"
    stale.mkdir()
    (stale / "000000.jpg").write_bytes(b"half")
    extract_frames(bikes, out, fps=5, height=68)
    assert not stale.exists() and len(list(out.iterdir())) == 50
