"""Chosen output frames decoded straight from the source video, upright, at a chosen resolution (the person
filter looks at more pixels than the stored JPGs hold)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.core.errors import BouldersegError
from pipeline.media.probe import VideoInfo, source_indices


def scaled_size(info: VideoInfo, short_side: int | None) -> tuple[int, int]:
    """(width, height) as displayed with the short side at most `short_side` (never upscaled), even sides."""
    w, h = info.display_size
    k = min(1.0, short_side / min(w, h)) if short_side else 1.0
    return max(2, round(w * k / 2) * 2), max(2, round(h * k / 2) * 2)


def read_frames(info: VideoInfo, outputs: np.ndarray, *, fps: float,
                short_side: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, (H, W, 3) uint8 BGR upright frame) for each of the sorted output frames `outputs` at `fps`,
    decoded once from the source in presentation order; each source frame is matched by its exact timestamp."""
    import av

    shows = source_indices(info, fps)[outputs]  # the source frame each wanted output frame shows
    wanted: dict[int, list[int]] = {}
    for out_i, src in zip(outputs.tolist(), shows.tolist()):
        wanted.setdefault(info.tick(src), []).append(out_i)
    width, height = scaled_size(info, short_side)
    last = info.tick(int(shows.max())) if len(shows) else None
    left = len(outputs)
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if frame.pts in wanted:
                    image = _upright(frame, width, height)
                    for out_i in wanted.pop(frame.pts):
                        left -= 1
                        yield out_i, image
                if not left or (frame.pts is not None and last is not None and frame.pts >= last):
                    break
    except av.error.FFmpegError as e:
        if wanted:
            raise BouldersegError(f"{info.path}: decoding stopped ({e}) before the frames the person filter needs; "
                                  "the file is damaged. Re-export it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`).") from e
    if wanted:
        raise BouldersegError(f"{info.path}: {len(wanted)} source frames did not decode; the file is damaged or was "
                              "changed since its frames were written. Rerun the frames stage, or re-export the video.")


def _upright(frame, width: int, height: int) -> np.ndarray:
    turns = round(frame.rotation / 90) % 4  # counter-clockwise, as np.rot90 turns
    w, h = (width, height) if turns % 2 == 0 else (height, width)
    image = frame.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def video_of(frames_dir: str | Path) -> Path:
    """The source video a frames directory was written from (its manifest's `source`)."""
    import json

    manifest = Path(frames_dir) / "manifest.json"
    try:
        return Path(json.loads(manifest.read_text())["source"])
    except (OSError, ValueError, KeyError) as e:
        raise BouldersegError(f"{manifest}: no readable manifest naming the source video ({e}). "
                              "Rerun the frames stage for this video.") from None
