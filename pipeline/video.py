"""Decode a video once, resample it to the pipeline fps and write numbered JPG frames."""
from __future__ import annotations

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


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    n_frames: int
    fps: Fraction
    width: int
    height: int


def _open(path: Path, **kwargs):  # -> decord.VideoReader
    import decord

    if not path.is_file():
        raise BouldersegError(f"{path}: video file not found. Check the path under videos in params.yaml.")
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), **kwargs)
    except Exception as e:  # noqa: BLE001 - decord raises its own untyped errors
        raise BouldersegError(
            f"{path}: cannot decode this video (not a video, or a damaged container). "
            "Re-export it as H.264 MP4 (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) "
            "or remove it from videos in params.yaml."
        ) from e


def probe(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size, read from the container without decoding frames."""
    path = Path(path)
    vr = _open(path)
    height, width = vr[0].shape[:2] if len(vr) else (0, 0)
    fps = Fraction(vr.get_avg_fps()).limit_denominator(1001)
    if len(vr) == 0 or fps <= 0:
        raise BouldersegError(f"{path}: the video has no frames or no frame rate.")
    return VideoInfo(path, len(vr), fps, width, height)


def output_frame_count(info: VideoInfo, fps: float) -> int:
    """Number of output frames i >= 0 whose time i/fps falls inside the video."""
    duration = Fraction(info.n_frames) / info.fps
    return math.ceil(duration * Fraction(fps).limit_denominator(1001))


def source_indices(info: VideoInfo, fps: float) -> np.ndarray:
    """For each output frame i, the source frame shown at time i/fps."""
    ratio = info.fps / Fraction(fps).limit_denominator(1001)
    n_out = output_frame_count(info, fps)
    return np.array([math.floor(i * ratio) for i in range(n_out)], dtype=np.int64)


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
    """Write `out_dir/000000.jpg …`, one per output frame at `fps`; returns the count.

    Frames are decoded sequentially (each once) and JPG-encoded on `workers` threads while
    decoding goes on; at most 4 * workers frames are held in memory.
    """
    video, out_dir = Path(video), Path(out_dir)
    info = probe(video)
    width, height = output_size(info, height)
    wanted = source_indices(info, fps)
    vr = _open(video, width=width, height=height)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpg_quality)]
    with atomic_output(out_dir, directory=True) as tmp, ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        out_i = 0
        for src_i in tqdm(range(info.n_frames), desc=f"frames {video.name}", unit="frame", disable=None):
            rgb = vr.next().asnumpy()  # (H, W, 3) uint8
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
