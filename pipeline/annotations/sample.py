"""The sample dataset: short face/profile videos of climbs with real photographed people.

Each climb is a seeded timeline of segments (French labels, as the paper's annotators wrote
them) with unannotated gaps in which nobody is in the frame. A photographed person (from
scikit-image's `astronaut` and `camera`) is composited on a drawn climbing wall; the classes
differ in where the person is and how they move, so that a head trained even on features of
an untrained backbone can learn them. The profile view is the face view seen at an angle.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError

WIDTH, HEIGHT, FPS = 320, 240, 25
FRENCH = {"climbing": "grimpe", "brushing": "brossage", "reading": "lecture", "stopwatch": "chrono"}
VIEWS = ("face", "profile")


@dataclass(frozen=True)
class SampleSegment:
    label: str  # canonical class
    start: float  # seconds
    duration: float


def timeline(seed: int, *, seconds: float) -> list[SampleSegment]:
    """Segments covering every class in a seeded order, separated by short unannotated gaps."""
    rng = np.random.default_rng(seed)
    tail = ["climbing", "brushing", "reading", "climbing"]
    rng.shuffle(tail)
    order = ["stopwatch", "reading", *tail]
    segs, t = [], float(rng.uniform(0.4, 0.8))
    for label in order:
        duration = round(float(rng.uniform(0.8, 1.3)), 2)
        if t + duration > seconds - 0.3:
            break
        segs.append(SampleSegment(label, round(t, 2), duration))
        t += duration + (float(rng.uniform(0.3, 0.7)) if rng.random() < 0.5 else 0.0)
    return segs


def _sprites() -> list[np.ndarray]:
    """Rectangular cut-outs of real photographed people, BGR."""
    import skimage.data

    astronaut = skimage.data.astronaut()[10:512, 20:370, ::-1]
    camera = np.repeat(skimage.data.camera()[60:512, 0:330, None], 3, axis=2)
    return [np.ascontiguousarray(astronaut), np.ascontiguousarray(camera)]


def _wall(seed: int) -> np.ndarray:
    """A plywood wall with coloured holds and a blue mat, BGR (HEIGHT, WIDTH, 3)."""
    rng = np.random.default_rng(1000 + seed)
    wall = np.full((HEIGHT, WIDTH, 3), (150, 185, 205), np.uint8)
    wall = (wall + rng.normal(0, 6, wall.shape)).clip(0, 255).astype(np.uint8)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        centre = (int(rng.integers(10, WIDTH - 10)), int(rng.integers(10, HEIGHT - 40)))
        cv2.circle(wall, centre, int(rng.integers(3, 8)), colour, -1)
    wall[HEIGHT - 24 :] = (120, 60, 20)
    cv2.rectangle(wall, (WIDTH - 58, HEIGHT - 100), (WIDTH - 8, HEIGHT - 70), (20, 20, 20), -1)
    return wall


def _pose(label: str, u: float, t: float) -> tuple[float, float, float]:
    """(centre x, bottom y, height) of the person, as fractions of the frame, at segment
    progress `u` in [0, 1) and time `t` seconds."""
    if label == "climbing":  # moves up the wall
        return 0.45 + 0.08 * math.sin(2 * math.pi * t), 0.95 - 0.55 * u, 0.35
    if label == "brushing":  # high on the wall, arm-fast side to side
        return 0.3 + 0.06 * math.sin(2 * math.pi * 3 * t), 0.55, 0.4
    if label == "reading":  # stands still below the wall
        return 0.5 + 0.01 * math.sin(2 * math.pi * 0.5 * t), 0.98, 0.55
    return 0.82, 0.98, 0.6  # stopwatch: at the clock, bottom right


def _composite(frame: np.ndarray, sprite: np.ndarray, cx: float, bottom: float, h: float) -> None:
    ph = max(8, int(h * HEIGHT))
    pw = max(4, int(sprite.shape[1] * ph / sprite.shape[0]))
    person = cv2.resize(sprite, (pw, ph), interpolation=cv2.INTER_AREA)
    x0, y1 = int(cx * WIDTH - pw / 2), int(bottom * HEIGHT)
    y0 = y1 - ph
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + pw, WIDTH), min(y1, HEIGHT)
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = person[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]


def _profile(frame: np.ndarray) -> np.ndarray:
    """The same scene seen from the side: a perspective squeeze of the face view."""
    src = np.float32([[0, 0], [WIDTH, 0], [WIDTH, HEIGHT], [0, HEIGHT]])
    dst = np.float32([[40, 25], [WIDTH - 10, 0], [WIDTH - 10, HEIGHT], [40, HEIGHT - 25]])
    return cv2.warpPerspective(frame, cv2.getPerspectiveTransform(src, dst), (WIDTH, HEIGHT),
                               borderValue=(60, 60, 60))


def render_video(path: Path, segments: list[SampleSegment], *, climb: int, view: str, seconds: float) -> None:
    """Write the MP4 (mpeg4, WIDTH x HEIGHT, FPS) of one view of one climb."""
    wall, sprite = _wall(climb), _sprites()[climb % 2]
    with atomic_output(path) as tmp:
        tmp_mp4 = tmp.with_suffix(".mp4")
        writer = cv2.VideoWriter(str(tmp_mp4), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        for i in range(int(seconds * FPS)):
            t, frame = i / FPS, wall.copy()
            seg = next((s for s in reversed(segments) if s.start <= t < s.start + s.duration), None)
            if seg is not None:
                _composite(frame, sprite, *_pose(seg.label, (t - seg.start) / seg.duration, t))
            writer.write(_profile(frame) if view == "profile" else frame)
        writer.release()
        tmp_mp4.rename(tmp)


def write_annotation(path: Path, segments: list[SampleSegment]) -> None:
    """The annotator's sheet: one row per segment, French label, start and duration in seconds."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "annotations"
    ws.append(["Action", "Début", "Durée"])
    for s in segments:
        ws.append([FRENCH[s.label], s.start, s.duration])
    with atomic_output(path) as tmp:
        wb.save(tmp)


def make_video(root: str | Path, *, climb: int, view: str, seconds: float = 10.0) -> dict[str, str]:
    """Write one view of one climb under `root`; returns its entry for `videos` in params.yaml."""
    root = Path(root)
    name = f"climb{climb}_{view}"
    segments = timeline(climb, seconds=seconds)
    video = root / "videos" / f"{name}.mp4"
    annotation = root / "annotations" / f"{name}.xlsx"
    render_video(video, segments, climb=climb, view=view, seconds=seconds)
    write_annotation(annotation, segments)
    return {"climb": f"climb{climb}", "view": view, "video": str(video), "annotation": str(annotation)}


def make_sample(root: str | Path, *, climbs: int = 4, seconds: float = 10.0) -> dict[str, dict[str, str]]:
    """Both views of climbs 1..`climbs`; returns the `videos` table for params.yaml."""
    missing = [m for m in ("skimage", "openpyxl") if importlib.util.find_spec(m) is None]
    if missing:
        raise BouldersegError(f"the sample generator needs {', '.join(missing)}: pip install 'boulderseg[sample]'.")
    return {
        f"climb{c}_{v}": make_video(root, climb=c, view=v, seconds=seconds)
        for c in range(1, climbs + 1)
        for v in VIEWS
    }
