from __future__ import annotations

import bisect
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from videocut import cut_tail

from pipeline.core.errors import BouldersegError
from pipeline.media.frames import extract_frames
from pipeline.media.probe import VideoInfo, output_frame_count, probe, source_indices


def test_probe_reads_real_footage(bikes):
    info = probe(bikes)
    assert (info.n_frames, info.duration, info.width, info.height) == (250, 10, 640, 272)
    assert info.pts[:3] == (0, Fraction(1, 25), Fraction(2, 25))


def test_resampling_maps_each_output_time_to_the_source_frame_shown_then():
    ntsc = VideoInfo.constant_rate(Path("x"), n_frames=120, fps=Fraction(30000, 1001), width=1, height=1)
    assert output_frame_count(ntsc, 25) == 101  # 120 / 29.97 s = 4.004 s -> frames at 0, 0.04, … 4.0
    idx = source_indices(ntsc, 25)
    assert idx[:6].tolist() == [0, 1, 2, 3, 4, 5] and idx[5:7].tolist() == [5, 7] and idx[-1] == 119
    same = VideoInfo.constant_rate(Path("x"), n_frames=250, fps=Fraction(25), width=1, height=1)
    assert source_indices(same, 25).tolist() == list(range(250))


def write_numbered(path: Path, ticks: list[int], time_base: Fraction, *, rate: int = 30) -> None:
    """A video whose k-th frame (shown from ticks[k] * time_base s) shows k in binary as 8 bars."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt, s.time_base = 128, 32, "yuv420p", time_base
        s.codec_context.time_base = time_base
        for k, t in enumerate(ticks):
            bars = np.repeat([(k >> b & 1) * 255 for b in range(8)], 16).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.tile(bars[None, :, None], (32, 1, 3)), format="rgb24")
            frame.pts, frame.time_base = t, time_base
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def shown(jpg: Path) -> int:
    """The number the frame shows."""
    bars = cv2.imread(str(jpg), cv2.IMREAD_GRAYSCALE).reshape(32, 8, 16).mean(axis=(0, 2))
    return int(sum(1 << b for b in range(8) if bars[b] > 128))


def check_exact(video: Path, out: Path, seconds: list[Fraction], duration: Fraction) -> None:
    """Every output frame i at 25 fps is the last source frame whose timestamp is <= i / 25."""
    n = extract_frames(video, out, fps=25)
    expected = [bisect.bisect_right(seconds, Fraction(i, 25)) - 1 for i in range(math.ceil(duration * 25))]
    assert n == len(expected) == output_frame_count(probe(video), 25)
    assert [shown(p) for p in sorted(out.glob("*.jpg"))] == expected


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30), Fraction(30000, 1001), Fraction(60)])
def test_constant_rate_sources_give_exact_counts_and_frames(rate, tmp_path):
    n = int(2 * rate)  # about 2 s
    base = 1 / rate if rate.denominator == 1 else Fraction(1, 30000)
    ticks = [int(k / rate / base) for k in range(n)]
    write_numbered(tmp_path / "v.mp4", ticks, base, rate=round(rate))
    check_exact(tmp_path / "v.mp4", tmp_path / "f", [k / rate for k in range(n)], n / rate)


def test_variable_rate_source_is_placed_by_timestamps_not_the_stated_rate(tmp_path):
    # 180 frames over 8 s with irregular gaps in a container that states 30 fps: 200 frames at 25 fps
    gaps = np.random.default_rng(0).integers(20, 70, 180)
    ticks = np.concatenate([[0], np.cumsum(gaps)[:-1]])
    ticks = (ticks * (7955 / ticks[-1])).astype(int).tolist()  # last frame shown from 7.955 s
    write_numbered(tmp_path / "vfr.mkv", ticks, Fraction(1, 1000))
    info = probe(tmp_path / "vfr.mkv")
    assert info.n_frames == 180 and info.pts == tuple(Fraction(t, 1000) for t in ticks)
    check_exact(tmp_path / "vfr.mkv", tmp_path / "f", list(info.pts), info.duration)
    assert len(list((tmp_path / "f").glob("*.jpg"))) == math.ceil(info.duration * 25) == 200
    assert json.loads((tmp_path / "f" / "manifest.json").read_text()) == {
        "source": str(tmp_path / "vfr.mkv"), "codec": "h264", "stated_fps": 30.0,
        "mean_fps": pytest.approx(180 / float(info.duration)), "duration_s": pytest.approx(float(info.duration)),
        "source_frames": 180, "decoded": 180, "missing": 0, "keyframes": len(info.keyframes), "rotation": 0,
        "fps": 25, "frames": 200, "width": 128, "height": 32, "short_side": None}


def test_extract_frames_native_fps_exact_count_and_names(bikes, tmp_path):
    out = tmp_path / "f"
    assert extract_frames(bikes, out, fps=25, short_side=None) == 250
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == "000000.jpg" and names[-2:] == ["000249.jpg", "manifest.json"] and len(names) == 251
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
    extract_frames(bikes, out, fps=5, short_side=68)
    assert not stale.exists() and len(list(out.glob("*.jpg"))) == 50


def write_audio(container, seconds: float = 1.0) -> None:
    import av

    s = container.add_stream("aac", rate=16000)
    for i in range(int(seconds * 16000 / 1024)):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, i * 1024
        for packet in s.encode(frame):
            container.mux(packet)
    for packet in s.encode():
        container.mux(packet)


def error_of(video: Path, out: Path) -> str:
    with pytest.raises(BouldersegError) as e:
        extract_frames(video, out, fps=25)
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.tmp-*"))
    return str(e.value)


def test_audio_only_and_zero_frame_files_are_refused_by_name(tmp_path):
    import av

    with av.open(str(tmp_path / "talk.m4a"), "w") as c:
        write_audio(c)
    assert error_of(tmp_path / "talk.m4a", tmp_path / "a") == (
        f"{tmp_path / 'talk.m4a'}: no video stream (an audio-only or data file?). Use the video file.")
    with av.open(str(tmp_path / "empty.mkv"), "w") as c:
        video = c.add_stream("libx264", rate=25)
        video.width, video.height = 64, 48
        write_audio(c)
    assert error_of(tmp_path / "empty.mkv", tmp_path / "b") == f"{tmp_path / 'empty.mkv'}: the video has no frames."


def test_truncated_videos_are_refused_by_name(bikes, tmp_path):
    data = bikes.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is lost
    assert error_of(tmp_path / "half.mp4", tmp_path / "a").startswith(
        f"{tmp_path / 'half.mp4'}: cannot decode this video (not a video, or a damaged container).")
    write_numbered(tmp_path / "whole.mkv", [40 * k for k in range(200)], Fraction(1, 1000))
    data = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])  # the header still says 7.99 s
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'cut.mkv'))}: truncated: the container says 7\.99 s but its "
                        r"frames end at \d\.\d\d s\. Copy the file again from its source, or re-export it\.",
                        error_of(tmp_path / "cut.mkv", tmp_path / "b"))


def test_corrupt_frame_data_is_refused_naming_the_file_and_frame(tmp_path):
    write_numbered(tmp_path / "whole.mkv", [40 * k for k in range(200)], Fraction(1, 1000))
    data = bytearray((tmp_path / "whole.mkv").read_bytes())
    at = int(len(data) * 0.3)
    data[at : at + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (tmp_path / "garbled.mkv").write_bytes(bytes(data))
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'garbled.mkv'))}: source frame \d+ did not decode \(.*Invalid data"
                        r".*\); the file is damaged or truncated\. Re-export it .* or remove it from videos\.",
                        error_of(tmp_path / "garbled.mkv", tmp_path / "f"))


def test_label_rows_equal_frames_for_a_variable_rate_source(tmp_path):
    from pipeline.annotations.segments import LabelPolicy
    from pipeline.annotations.videotable import VideoEntry, label_video

    write_numbered(tmp_path / "vfr.mkv", [45 * k - (k % 3) * 10 for k in range(178)], Fraction(1, 1000))
    (tmp_path / "a.csv").write_text("label,start,end\nclimbing,7.5,7.96\n")
    entry = VideoEntry("v", "c", tmp_path / "vfr.mkv", tmp_path / "a.csv")
    labels = label_video(entry, LabelPolicy(classes=("climbing", "nothing")), fps=25).labels
    assert len(labels) == extract_frames(tmp_path / "vfr.mkv", tmp_path / "f", fps=25) == 200  # 8 s, not 178 / 30
    assert labels[188:199] == ["climbing"] * 11 and labels[187] == labels[199] == "nothing"  # 7.52 … 7.92 s


def test_a_cut_off_last_packet_ends_the_video_at_its_last_decoded_frame(bikes, tmp_path, capsys):
    from pipeline.annotations.segments import LabelPolicy
    from pipeline.annotations.videotable import VideoEntry, label_video

    video = cut_tail(bikes, tmp_path / "phone.mp4", 1)
    info = probe(video)
    assert 0 < info.missing <= 12 and info.n_frames + info.missing == 250
    assert probe(video).n_frames == info.n_frames  # the same answer, and the warning only once
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and f"{video}: its last {info.missing} of 250 frames do not decode" in err
    n = extract_frames(video, tmp_path / "f", fps=25, short_side=64)
    assert n == output_frame_count(info, 25) == info.n_frames  # 25 fps source: one output frame each
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert (manifest["source_frames"], manifest["decoded"], manifest["missing"]) == (250, n, info.missing)
    (tmp_path / "a.csv").write_text("label,start,end\nclimbing,0,20\n")
    entry = VideoEntry("v", "c", video, tmp_path / "a.csv")
    assert len(label_video(entry, LabelPolicy(classes=("climbing", "nothing")), fps=25).labels) == n


def test_a_longer_undecodable_tail_is_still_refused(bikes, tmp_path):
    video = cut_tail(bikes, tmp_path / "broken.mp4", 40)  # 1.6 s at 25 fps
    assert probe(video).missing == 0  # too long to be a cut-off packet: not cut, and the frames stage refuses it
    assert re.fullmatch(rf"{re.escape(str(video))}: source frame \d+ did not decode \(.*\); the file is damaged or "
                        r"truncated\. Re-export it .* or remove it from videos\.", error_of(video, tmp_path / "f"))
    assert not (tmp_path / "f").exists()
