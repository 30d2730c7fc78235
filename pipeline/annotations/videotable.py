"""The `videos` table of params.yaml: one entry per video, and the per-frame labels of one entry."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.annotations.segments import LabelPolicy, Segment, clip_to_video, frame_labels, read_segments
from pipeline.core import params
from pipeline.media.probe import output_frame_count, probe

UNANNOTATED = Path("data/unannotated")  # what the stages make of the `unannotated` table's videos, and predict's sheets


@dataclass(frozen=True)
class VideoEntry:
    key: str
    climb: str  # groups the views of one climb: they always share a cross-validation fold
    video: Path
    annotation: Path
    sheet: str | None = None  # workbook sheet holding this video's rows (default: see pipeline.annotations.sheets)
    offset: float = 0.0  # seconds added to every annotated time to get the video time

    @property
    def names(self) -> list[str]:
        """What a sheet name or a video column may call this video."""
        return [self.key, self.video.stem, self.video.name]


def entries(videos: Mapping[str, params.Video]) -> dict[str, VideoEntry]:
    """Every entry of params.yaml `videos` (already checked by pipeline.core.params)."""
    return {key: VideoEntry(key=key, climb=v.climb, video=Path(v.video), annotation=Path(v.annotation),
                            sheet=v.sheet, offset=v.offset) for key, v in videos.items()}


@dataclass(frozen=True)
class LabelledVideo:
    labels: list[str]  # one per frame at the pipeline fps
    segments: list[Segment]  # as read, before clipping
    warnings: list[str]
    where: str  # the annotation file (and sheet) they came from


def label_video(entry: VideoEntry, policy: LabelPolicy, *, fps: float, n_frames: int | None = None) -> LabelledVideo:
    """Per-frame labels of one video: its annotation rows, shifted by its offset, clipped to the video.
    `n_frames`: the video's frame count at `fps` when known (the frames stage's manifest); else it is probed."""
    n_frames = output_frame_count(probe(entry.video), fps) if n_frames is None else n_frames
    segments, where = read_segments(entry.annotation, policy, names=entry.names, sheet=entry.sheet,
                                    offset=entry.offset)
    kept, warnings = clip_to_video(segments, duration=n_frames / fps, where=where)
    labels = frame_labels(kept, n_frames=n_frames, fps=fps, policy=policy, where=where)
    return LabelledVideo(labels, segments, warnings, where)
