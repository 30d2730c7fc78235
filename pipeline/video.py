"""Decode a video once, resample it to the pipeline fps and write numbered JPG frames."""
from __future__ import annotations

import bisect
import json
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError

FRAME_NAME = "{:06d}.jpg"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class VideoInfo:
    """A video stream's frames in presentation order, timed exactly from the container's timestamps."""

    path: Path
    pts: tuple[Fraction, ...]  # seconds each source frame is shown from; the first at 0
    frame_duration: Fraction  # of the last frame: the median gap between timestamps
    width: int
    height: int
    codec: str = "unknown"
    stated_fps: Fraction | None = None  # the rate the container states, which variable-rate video does not keep

    @property
    def n_frames(self) -> int:
        return len(self.pts)

    @property
    def duration(self) -> Fraction:
        """Seconds from the first frame's timestamp to the end of the last frame."""
        return self.pts[-1] + self.frame_duration

    @classmethod
    def constant_rate(cls, path: Path, *, n_frames: int, fps: Fraction, width: int, height: int) -> VideoInfo:
        return cls(path, tuple(Fraction(k) / fps for k in range(n_frames)), 1 / fps, width, height)


def _open(path: Path, **kwargs):  # -> decord.VideoReader; `path` was probed first
    import decord

    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), **kwargs)
    except Exception as e:  # noqa: BLE001 - decord raises its own untyped errors
        raise _undecodable(path) from e


def _undecodable(path: Path) -> BouldersegError:
    return BouldersegError(
        f"{path}: cannot decode this video (not a video, or a damaged container). "
        "Re-export it as H.264 MP4 (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) "
        "or remove it from videos in params.yaml."
    )


def probe(path: str | Path) -> VideoInfo:
    """Every frame's presentation timestamp and the frame size, read from the container's packets
    without decoding (exact: integer timestamps times the stream's time base)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise BouldersegError(f"{path}: video file not found. Check the path under videos in params.yaml.")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BouldersegError(f"{path}: no video stream (an audio-only or data file?). Use the video file.")
            stream = container.streams.video[0]
            ticks = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
            size, base, rate = (stream.codec_context.width, stream.codec_context.height), stream.time_base, \
                stream.guessed_rate or stream.average_rate
            codec = stream.codec_context.name
            declared = _declared_duration(container, stream)
    except av.error.FFmpegError as e:
        raise _undecodable(path) from e
    if not ticks:
        raise BouldersegError(f"{path}: the video has no frames.")
    gaps = np.diff(ticks)
    if len(gaps):
        frame_ticks = Fraction(float(np.median(gaps)))
    elif rate:
        frame_ticks = 1 / Fraction(rate) / Fraction(base)
    else:
        raise BouldersegError(f"{path}: one frame and no frame rate: its duration is unknown.")
    pts = tuple((t - ticks[0]) * Fraction(base) for t in ticks)
    info = VideoInfo(path, pts, Fraction(frame_ticks) * Fraction(base), *size, codec=codec,
                     stated_fps=Fraction(rate) if rate else None)
    if declared is not None and declared - info.duration > max(Fraction(1, 2), 2 * info.frame_duration):
        raise BouldersegError(f"{path}: truncated: the container says {float(declared):.2f} s but its frames end at "
                              f"{float(info.duration):.2f} s. Copy the file again from its source, or re-export it.")
    return info


def _declared_duration(container, stream) -> Fraction | None:
    """The video's length as its header states it (the stream's, else the file's if that is all it holds)."""
    import av

    if stream.duration is not None:
        return stream.duration * Fraction(stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        return Fraction(container.duration, av.time_base)
    return None


def output_frame_count(info: VideoInfo, fps: float) -> int:
    """Number of output frames i >= 0 whose time i/fps falls inside the video."""
    return math.ceil(info.duration * Fraction(fps).limit_denominator(1001))


def source_indices(info: VideoInfo, fps: float) -> np.ndarray:
    """For each output frame i, the source frame shown at time i/fps: the last whose timestamp is <= it
    (the semantics of ffmpeg's fps filter)."""
    rate = Fraction(fps).limit_denominator(1001)
    times = [Fraction(i) / rate for i in range(output_frame_count(info, fps))]
    return np.array([bisect.bisect_right(info.pts, t) - 1 for t in times], dtype=np.int64)


def manifest(info: VideoInfo, *, fps: float, n_out: int, size: tuple[int, int]) -> dict:
    """What a frames directory was made from, written beside its frames as manifest.json."""
    return {
        "source": str(info.path), "codec": info.codec,
        "stated_fps": float(info.stated_fps) if info.stated_fps else None,
        "mean_fps": info.n_frames / float(info.duration), "duration_s": float(info.duration),
        "source_frames": info.n_frames, "fps": fps, "frames": n_out, "width": size[0], "height": size[1],
    }


def output_size(info: VideoInfo, height: int | None) -> tuple[int, int]:
    """(width, height) after resizing to `height` rows, keeping the aspect ratio, even sizes."""
    if not height or height == info.height:
        return info.width, info.height
    width = round(info.width * height / info.height / 2) * 2
    return width, height


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    *,
    fps: float,
    height: int | None = None,
    jpg_quality: int = 90,
    workers: int = 2,
) -> int:
    """Write `out_dir/000000.jpg …`, one per output frame at `fps`, and `out_dir/manifest.json`; returns the count.

    Frames are decoded sequentially (each once) and JPG-encoded on `workers` threads while
    decoding goes on; at most 4 * workers frames are held in memory.
    """
    video, out_dir = Path(video), Path(out_dir)
    info = probe(video)
    width, height = output_size(info, height)
    wanted = source_indices(info, fps)
    vr = _open(video, width=width, height=height)
    if len(vr) != info.n_frames:
        raise BouldersegError(f"{video}: the container holds {info.n_frames} frames but {len(vr)} decode; the file "
                              "is damaged. Re-export it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`).")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpg_quality)]
    with atomic_output(out_dir, directory=True) as tmp, ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        out_i = 0
        for src_i in tqdm(range(info.n_frames), desc=f"frames {video.name}", unit="frame", disable=None):
            try:
                rgb = vr.next().asnumpy()  # (H, W, 3) uint8
            except Exception as e:  # noqa: BLE001 - decord raises its own untyped errors
                raise BouldersegError(f"{video}: decoding stopped at frame {src_i} of {info.n_frames}; the file "
                                      "may be truncated. Re-export it or remove it from videos.") from e
            while out_i < len(wanted) and wanted[out_i] == src_i:
                bgr = np.ascontiguousarray(rgb[..., ::-1])
                pending.append(pool.submit(cv2.imwrite, str(tmp / FRAME_NAME.format(out_i)), bgr, params))
                out_i += 1
            while len(pending) > 4 * workers:
                _check_written(pending.popleft(), out_dir)
        for fut in pending:
            _check_written(fut, out_dir)
        if out_i != len(wanted):
            raise BouldersegError(f"{video}: decoded {out_i} of {len(wanted)} frames; the file may be truncated.")
        summary = manifest(info, fps=fps, n_out=len(wanted), size=(width, height))
        (tmp / MANIFEST).write_text(json.dumps(summary, indent=2) + "\n")
    return len(wanted)


def _check_written(fut: Future, out_dir: Path) -> None:
    if not fut.result():
        raise BouldersegError(f"{out_dir}: could not write a JPG frame (disk full or no permission?).")


def frame_paths(frames_dir: str | Path) -> list[Path]:
    """The JPG frames of a frames directory in index order; an error if there are none."""
    frames_dir = Path(frames_dir)
    paths = sorted(frames_dir.glob("*.jpg"))
    if not paths:
        raise BouldersegError(f"{frames_dir}: no JPG frames. Run `boulderseg frames` for this video first.")
    return paths
