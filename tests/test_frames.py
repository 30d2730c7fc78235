"""The frames writer: keyframe chunks on several processes, colours and rotation as displayed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace

from conftest import REPO
from pipeline.media.frames import extract_frames, plan_chunks
from pipeline.media.probe import VideoInfo, probe, source_indices

COLOURS = np.array([[200, 30, 40], [20, 180, 60], [40, 60, 220], [230, 230, 40],
                    [128, 128, 128], [250, 250, 250], [10, 10, 10], [180, 90, 150]])
PATCHES = np.repeat(np.repeat(COLOURS.reshape(2, 4, 3), 32, 0), 32, 1).astype(np.uint8)  # (64, 128, 3) RGB


def test_chunks_start_at_keyframes_and_map_every_output_frame():
    info = replace(VideoInfo.constant_rate(Path("x"), n_frames=100, fps=Fraction(25), width=8, height=8),
                   keyframes=tuple(range(0, 100, 10)), time_base=Fraction(1, 25), start=3)
    chunks = plan_chunks(info, np.arange(100), parts=4)
    assert [(c.first, len(c.ticks)) for c in chunks] == [(0, 30), (30, 30), (60, 30), (90, 10)]
    assert chunks[1].ticks[:2] == (33, 34)  # container ticks, offset by the first frame's
    wanted = np.array([0, 0, 2, 5, 5, 5, 31])  # repeats and skips, as resampling makes them
    chunks = plan_chunks(info, wanted, parts=4)
    assert [(c.first, len(c.ticks)) for c in chunks] == [(0, 10), (10, 10), (20, 10), (30, 2)]
    assert chunks[0].outputs[:6] == ((0, 1), (), (2,), (), (), (3, 4, 5)) and chunks[3].outputs == ((), (6,))


def test_several_processes_write_the_same_bytes_as_one(bikes, tmp_path):
    info = probe(bikes)
    assert len(plan_chunks(info, source_indices(info, 25), parts=8)) > 1  # bikes.mp4 really is cut
    extract_frames(bikes, tmp_path / "one", fps=25, short_side=136, workers=1)
    extract_frames(bikes, tmp_path / "two", fps=25, short_side=136, workers=2)
    one, two = sorted((tmp_path / "one").iterdir()), sorted((tmp_path / "two").iterdir())
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 251
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two))


AFTER_THREAD_POOLS = """
import sys
import cv2, numpy as np, torch
from pipeline.media.frames import extract_frames

if __name__ == "__main__":
    big = np.random.default_rng(0).integers(0, 255, (2000, 2000, 3), dtype=np.uint8)
    for _ in range(5):
        cv2.resize(big, (1000, 1000), interpolation=cv2.INTER_AREA)  # OpenCV's thread pool is running
    torch.ones(500, 500) @ torch.ones(500, 500)  # and torch's
    print(extract_frames(sys.argv[1], sys.argv[2], fps=25, short_side=68, workers=2))
"""


def test_several_processes_after_opencv_and_torch_ran_in_the_caller_do_not_hang(bikes, tmp_path):
    (tmp_path / "script.py").write_text(AFTER_THREAD_POOLS)  # forking this caller left workers deadlocked
    run = subprocess.run([sys.executable, str(tmp_path / "script.py"), str(bikes), str(tmp_path / "f")],
                         capture_output=True, text=True, timeout=120, env=os.environ | {"PYTHONPATH": str(REPO)})
    assert run.returncode == 0 and run.stdout.strip() == "250", run.stderr[-2000:]


def write_patches(path: Path, *, pix_fmt: str, bt709: bool) -> None:
    """Five frames of the colour patches, stored as `pix_fmt` (limited range unless yuvj) in BT.601 or BT.709."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 128, 64, pix_fmt, {"crf": "10"}
        full = pix_fmt.startswith("yuvj")
        if bt709:
            s.codec_context.colorspace, s.codec_context.color_range = 1, 1
        for k in range(5):
            frame = av.VideoFrame.from_ndarray(PATCHES, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=Colorspace.ITU709 if bt709 else Colorspace.ITU601,
                dst_color_range=ColorRange.JPEG if full else ColorRange.MPEG)
            frame.pts = k
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


@pytest.mark.parametrize(("pix_fmt", "bt709"), [("yuv420p", False), ("yuv420p", True), ("yuvj420p", False)],
                         ids=["bt601-limited", "bt709-limited", "bt601-full"])
def test_jpgs_show_the_colours_the_video_holds(pix_fmt, bt709, tmp_path):
    write_patches(tmp_path / "v.mp4", pix_fmt=pix_fmt, bt709=bt709)
    extract_frames(tmp_path / "v.mp4", tmp_path / "f", fps=25, jpg_quality=100)
    rgb = cv2.imread(str(tmp_path / "f" / "000002.jpg"))[..., ::-1].astype(int)
    centres = rgb[16::32, 16::32].reshape(-1, 3)  # the middle of each patch
    assert np.abs(centres - COLOURS).max() <= 3  # without the range or matrix conversion: 19 and 25


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotated_phone_video_is_written_upright(degrees, bikes, tmp_path):
    import imageio_ffmpeg

    rotated = tmp_path / "rotated.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-display_rotation", str(degrees), "-i",
                    str(bikes), "-t", "1", "-c", "copy", str(rotated)], check=True)
    assert probe(rotated).rotation == degrees % 360
    extract_frames(bikes, tmp_path / "plain", fps=25, short_side=None)
    extract_frames(rotated, tmp_path / "upright", fps=25, short_side=None)
    turned = np.rot90(cv2.imread(str(tmp_path / "plain" / "000010.jpg")), degrees // 90)
    upright = cv2.imread(str(tmp_path / "upright" / "000010.jpg"))
    assert upright.shape == turned.shape == ((272, 640, 3) if degrees == 180 else (640, 272, 3))
    assert np.abs(upright.astype(int) - turned).mean() < 2  # the same picture, re-encoded once more
    manifest = json.loads((tmp_path / "upright" / "manifest.json").read_text())
    assert (manifest["rotation"], manifest["width"], manifest["height"]) == (degrees % 360, *upright.shape[1::-1])
    # the short side is sized, portrait or landscape, and never upscaled
    extract_frames(rotated, tmp_path / "small", fps=25, short_side=136)
    assert cv2.imread(str(tmp_path / "small" / "000000.jpg")).shape[:2] == ((136, 320) if degrees == 180
                                                                            else (320, 136))
    assert json.loads((tmp_path / "small" / "manifest.json").read_text())["short_side"] == 136
    extract_frames(rotated, tmp_path / "native", fps=25, short_side=320)
    assert cv2.imread(str(tmp_path / "native" / "000000.jpg")).shape[:2] == upright.shape[:2]
