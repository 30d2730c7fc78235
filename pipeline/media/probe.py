"""A video's frames in time: exact timestamps from the container, and which source frame each output frame shows."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.core.errors import BouldersegError, warn

FRAME_NAME = "{:06d}.jpg"
MAX_CUT_SECONDS = Fraction(1, 2)  # a tail this short that does not decode ends the video, as ffmpeg and players do
_WARNED: set[tuple[str, int]] = set()  # (path, missing): one warning per file per process


@dataclass(frozen=True)
class VideoInfo:
    """A video stream's frames in presentation order, timed exactly from the container's timestamps."""

    path: Path
    pts: tuple[Fraction, ...]  # seconds each source frame is shown from; the first at 0
    frame_duration: Fraction  # of the last frame: the median gap between timestamps
    width: int  # as coded; `display_size` is upright
    height: int
    codec: str = "unknown"
    stated_fps: Fraction | None = None  # the rate the container states, which variable-rate video does not keep
    rotation: int = 0  # degrees counter-clockwise to turn the coded picture upright
    time_base: Fraction = Fraction(1)  # seconds per container tick: frame k has tick pts[k] / time_base + start
    start: int = 0  # the first frame's tick
    keyframes: tuple[int, ...] = (0,)  # frames decoding can start from
    missing: int = 0  # frames the container lists after the last one that decodes (cut off, see `probe`)

    @property
    def n_frames(self) -> int:
        return len(self.pts)

    @property
    def duration(self) -> Fraction:
        """Seconds from the first frame's timestamp to the end of the last frame."""
        return self.pts[-1] + self.frame_duration

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after rotation."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)

    def tick(self, k: int) -> int:
        """Frame k's presentation timestamp in container ticks."""
        return int(self.pts[k] / self.time_base) + self.start

    @classmethod
    def constant_rate(cls, path: Path, *, n_frames: int, fps: Fraction, width: int, height: int) -> VideoInfo:
        return cls(path, tuple(Fraction(k) / fps for k in range(n_frames)), 1 / fps, width, height)


def _undecodable(path: Path) -> BouldersegError:
    return BouldersegError(
        f"{path}: cannot decode this video (not a video, or a damaged container). "
        "Re-export it as H.264 MP4 (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) "
        "or remove it from videos in params.yaml."
    )


def probe(path: str | Path) -> VideoInfo:
    """Every frame's presentation timestamp, the keyframes and the frame size, read from the container's
    packets (exact: integer timestamps times the stream's time base); the rotation from the first frame."""
    import av

    path = Path(path)
    if not path.is_file():
        raise BouldersegError(f"{path}: video file not found. Check the path under videos in params.yaml.")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BouldersegError(f"{path}: no video stream (an audio-only or data file?). Use the video file.")
            stream = container.streams.video[0]
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None and p.size]
            size, base, rate = (stream.codec_context.width, stream.codec_context.height), stream.time_base, \
                stream.guessed_rate or stream.average_rate
            codec = stream.codec_context.name
            declared = _declared_duration(container, stream)
        if not packets:
            raise BouldersegError(f"{path}: the video has no frames.")
        rotation = _rotation(path)
    except av.error.FFmpegError as e:
        raise _undecodable(path) from e
    ticks = sorted(t for t, _ in packets)
    keyframes = tuple(sorted(bisect.bisect_left(ticks, t) for t, key in packets if key))
    gaps = np.diff(ticks)
    if len(gaps):
        frame_ticks = Fraction(float(np.median(gaps)))
    elif rate:
        frame_ticks = 1 / Fraction(rate) / Fraction(base)
    else:
        raise BouldersegError(f"{path}: one frame and no frame rate: its duration is unknown.")
    pts = tuple((t - ticks[0]) * Fraction(base) for t in ticks)
    info = VideoInfo(path, pts, Fraction(frame_ticks) * Fraction(base), *size, codec=codec,
                     stated_fps=Fraction(rate) if rate else None, rotation=rotation, time_base=Fraction(base),
                     start=ticks[0], keyframes=keyframes or (0,))
    if declared is not None and declared - info.duration > max(Fraction(1, 2), 2 * info.frame_duration):
        raise BouldersegError(f"{path}: truncated: the container says {float(declared):.2f} s but its frames end at "
                              f"{float(info.duration):.2f} s. Copy the file again from its source, or re-export it.")
    return _cut_undecodable_tail(info)


def _decodable_tail(info: VideoInfo) -> int:
    """How many frames decode, found by decoding from the last keyframe to the end (one group of pictures)."""
    import av

    last_key = info.keyframes[-1]
    index = {info.tick(k): k for k in range(last_key, info.n_frames)}
    decoded = last_key
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            if last_key:
                container.seek(info.tick(last_key), stream=stream, backward=True)
            for frame in container.decode(stream):
                k = index.get(frame.pts)
                if k is not None and k == decoded:
                    decoded += 1
    except av.error.FFmpegError:
        pass  # what decoded before the error counts; a shortfall is judged below
    return decoded


def _cut_undecodable_tail(info: VideoInfo) -> VideoInfo:
    """Phones often end a clip in a packet that does not decode (ffmpeg and players simply stop before it): a
    shortfall of at most MAX_CUT_SECONDS at the end ends the video at its last decoded frame, with one warning. A
    longer one is left for the frames stage to refuse as damaged."""
    decoded = _decodable_tail(info)
    missing = info.n_frames - decoded
    if missing == 0 or decoded == 0 or info.duration - info.pts[decoded] > MAX_CUT_SECONDS:
        return info
    if (str(info.path), missing) not in _WARNED:
        _WARNED.add((str(info.path), missing))
        warn(f"{info.path}: its last {missing} of {info.n_frames} frames do not decode (a cut-off last packet, "
             f"common in phone clips); the video ends at frame {decoded - 1}, as ffmpeg and players end it.")
    return replace(info, pts=info.pts[:decoded], missing=missing,
                   keyframes=tuple(k for k in info.keyframes if k < decoded) or (0,))


def _rotation(path: Path) -> int:
    """Degrees the first frame says to turn the picture counter-clockwise (the container's display matrix)."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return round(frame.rotation) % 360
    return 0


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


def manifest(info: VideoInfo, *, fps: float, n_out: int, size: tuple[int, int], short_side: int | None = None) -> dict:
    """What a frames directory was made from, written beside its frames as manifest.json."""
    return {
        "source": str(info.path), "codec": info.codec,
        "stated_fps": float(info.stated_fps) if info.stated_fps else None,
        "mean_fps": info.n_frames / float(info.duration), "duration_s": float(info.duration),
        "source_frames": info.n_frames + info.missing, "decoded": info.n_frames, "missing": info.missing,
        "keyframes": len(info.keyframes), "rotation": info.rotation,
        "fps": fps, "frames": n_out, "width": size[0], "height": size[1], "short_side": short_side,
    }


def output_size(info: VideoInfo, short_side: int | None) -> tuple[int, int]:
    """(width, height) as displayed after resizing its short side (rows of a landscape video, columns of a portrait
    one) to `short_side`, keeping the aspect ratio, the long side even; a smaller source keeps its own size: an
    upscaled frame holds nothing more, only costs more."""
    width0, height0 = info.display_size
    if not short_side or short_side >= min(width0, height0):
        return width0, height0
    if height0 <= width0:
        return round(width0 * short_side / height0 / 2) * 2, short_side
    return short_side, round(height0 * short_side / width0 / 2) * 2


def frame_paths(frames_dir: str | Path) -> list[Path]:
    """The JPG frames of a frames directory in index order; an error if there are none."""
    frames_dir = Path(frames_dir)
    paths = sorted(frames_dir.glob("*.jpg"))
    if not paths:
        raise BouldersegError(f"{frames_dir}: no JPG frames. Run `boulderseg stage frames` for this video first.")
    return paths
