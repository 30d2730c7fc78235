"""The person filter: detect persons on every n-th frame -> one parquet row per frame.

`person` says whether the frame passes the filter. The detector runs on every `every`-th frame and on the last
one, on the stored JPGs or, with `Search.short_side`, on frames decoded from the source at that resolution. With a
`Search`, each look starts around the live tracks' last boxes, then the whole frame, then tiles
(`pipeline.persons.search`); detections are linked into tracks, boxes whose track does not stand out from the wall
near them are dropped, and a short miss inside a track is bridged (`pipeline.persons.tracks`). A frame between two detections
passes when either of them saw a person, so no frame next to a detection of a person is ever dropped. Later stages
train and score only on frames that pass; `found_by` records what found each frame.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.core.atomic import atomic_output
from pipeline.core.prefetch import prefetch
from pipeline.core.errors import warn
from pipeline.media.probe import VideoInfo, frame_paths, probe
from pipeline.media.source import read_frames, video_of
from pipeline.persons import LOW_SHARE, low_share_advice
from pipeline.persons.detector import PersonDetector
from pipeline.persons.search import Found, look
from pipeline.persons.tracks import MIN_BOXES, Follower, bridge, foreground, judged, thumbnail

UNTRAINED_REASON = "detector untrained (weights.pretrained=false): every frame passes"
WALL_REASON = "dropped: its track never stands out from the wall"
BRIDGE_REASON = "bridged: a miss inside the climber's track"
RESCAN = 1.0  # seconds: the whole frame and the tiles are looked at at least this often, even while following

BOX = pa.list_(pa.float32(), 4)  # x1, y1, x2, y2 in pixels of the stored frames
SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("detected", pa.bool_()),  # the detector ran on this frame
        ("n_persons", pa.int16()),  # persons detected; 0 where the detector did not run
        ("confidence", pa.float32()),  # best person confidence, 0 when none
        ("box", BOX),  # the most confident person; null when none
        ("near_box", BOX),  # the person the filter follows (the climber), where a detection saw them
        ("person", pa.bool_()),  # the frame passes the person filter
        ("reason", pa.string()),
        ("found_by", pa.string()),  # track | frame | tile2 | tile3 … | bridge | carried | untrained | '' (not passed)
        ("track", pa.int32()),  # the track near_box belongs to; -1: none
        ("foreground", pa.float32()),  # share of the followed box's pixels unlike the wall; null: not measured
    ]
)


@dataclass(frozen=True)
class Search:
    """How the filter looks for the climber: the persons section's keys of the same names."""

    short_side: int | None = None  # decode the source at this short side (never upscaled); None: the stored JPGs
    tiles: tuple[int, ...] = ()  # tile grids tried, in turn, when the whole frame finds nobody
    track: bool = False  # look around the climber's last box first, link detections into tracks, bridge misses
    max_gap: float = 0.0  # seconds: a miss inside a track this short is bridged (and the track stays live)
    min_foreground: float | None = None  # a track none of whose boxes differs this much from the wall is dropped

    @property
    def plain(self) -> bool:
        """The whole stored frame only, in batches: nothing to follow from one frame to the next."""
        return not self.tiles and not self.track and self.short_side is None and self.min_foreground is None

    @classmethod
    def of(cls, persons: Any) -> Search:
        """The persons section's (params.Persons) search settings."""
        return cls(short_side=persons.short_side, tiles=tuple(persons.tiles), track=persons.track,
                   max_gap=persons.max_gap, min_foreground=persons.min_foreground)

    def as_dict(self) -> dict:
        return {"short_side": self.short_side, "tiles": list(self.tiles), "track": self.track,
                "max_gap": self.max_gap, "min_foreground": self.min_foreground}


def detection_frames(n_frames: int, every: int) -> np.ndarray:
    """The frames the detector runs on: every `every`-th one and the last."""
    frames = np.arange(0, n_frames, every)
    return frames if frames[-1] == n_frames - 1 else np.append(frames, n_frames - 1)


def carry(n_frames: int, detected: np.ndarray, saw: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) pass decision and reason of every frame from detections at sorted frames `detected`.

    A detected frame passes when its detection saw a person; a frame between two detections passes
    when either of them did.
    """
    frames = np.arange(n_frames)
    after = np.searchsorted(detected, frames, side="left")  # (N,) the detection at or after each frame
    before = np.where(detected[after] == frames, after, after - 1)  # (N,) the one at or before
    person = saw[before] | saw[after]
    reasons = []
    for i in frames:
        b, a = detected[before[i]], detected[after[i]]
        if b == i:
            reasons.append("person detected" if saw[before[i]] else "no person detected")
        elif person[i]:
            reasons.append(f"carried from frame {b if saw[before[i]] else a}")
        else:
            reasons.append(f"no person at frames {b} and {a}")
    return person, reasons


def nearest(boxes: np.ndarray, previous: np.ndarray | None) -> int:
    """Index of the box whose centre is nearest `previous`'s (the most confident first when none)."""
    if previous is None:
        return 0
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return int(np.linalg.norm(centres - (previous[:2] + previous[2:]) / 2, axis=1).argmin())


def _read_batches(paths: list[Path], batch: int) -> Iterator[list[np.ndarray]]:
    for lo in range(0, len(paths), batch):
        yield [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[lo : lo + batch]]


@dataclass
class Looks:
    """What the detector found at each detection frame, the track of each box, and what the filter follows."""

    found: list[Found]
    tracks: list[np.ndarray]  # per detection frame, (n,) int32 the track of each box (-1: not tracked)
    thumbs: list[np.ndarray]  # grey thumbnails (searched looks with a foreground check only)
    size: tuple[int, int] = (0, 0)  # the looked-at images' (width, height) in pixels ((0, 0): the stored frames')
    chosen: list[int | None] = field(default_factory=list)  # per detection frame, the followed box (None: nobody)

    def near(self) -> np.ndarray:
        """(D, 4) float32 the followed box in the looked-at images' pixels; NaN: nobody."""
        return np.array([f.boxes[c] if c is not None else [np.nan] * 4 for f, c in zip(self.found, self.chosen)],
                        np.float32).reshape(-1, 4)


def _plain(detector: PersonDetector, paths: list[Path], batch: int, bar: tqdm) -> Looks:
    found: list[Found] = []
    for images in prefetch(_read_batches(paths, batch)):
        found += [Found.of(d, "frame") for d in detector.detect(images)]
        bar.update(len(images))
    looks = Looks(found, [np.full(len(f.conf), -1, np.int32) for f in found], [])
    previous = None
    for f in found:
        looks.chosen.append(nearest(f.boxes, previous) if len(f.conf) else None)
        previous = f.boxes[looks.chosen[-1]] if looks.chosen[-1] is not None else previous
    return looks


def _searched(detector: PersonDetector, images: Iterator[tuple[int, np.ndarray]], search: Search, fps: float,
              bar: tqdm) -> Looks:
    """Each detection frame looked at in order: around the live tracks' last boxes, and the whole frame and tiles
    when they found nobody or RESCAN seconds have passed since the last full look."""
    follow = Follower(fps, search.max_gap if search.track else 0.0)
    looks, scanned = Looks([], [], []), -np.inf
    for i, image in prefetch(images):
        around = follow.live(i) if search.track else []
        scan = (i - scanned) / fps >= RESCAN
        f = look(detector, image, around=around, grids=search.tiles, scan=scan)
        if scan or "track" not in f.by:  # the whole frame was looked at
            scanned = i
        looks.found.append(f)
        looks.tracks.append(follow.assign(i, f.boxes))
        if search.min_foreground is not None:
            looks.thumbs.append(thumbnail(image))
        looks.size = image.shape[1], image.shape[0]
        bar.update(1)
    return looks


def _follow(looks: Looks, detected: np.ndarray, search: Search, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Choose each detection frame's followed box among the boxes judged a person: the one that stands out from the
    wall most (with its track's boxes nearby: a climber moves, a judge or belayer standing by is part of the
    background), then the one of the longest track. Sets `looks.chosen`; returns (D,) the followed box's foreground
    share (NaN: none) and (D,) bool bridged."""
    frame_of = np.concatenate([np.full(len(f.conf), k) for k, f in enumerate(looks.found)]).astype(int)
    boxes = np.concatenate([f.boxes for f in looks.found]).reshape(-1, 4)
    tracks = np.concatenate(looks.tracks).astype(np.int32)
    whole = np.array([b == "frame" for f in looks.found for b in f.by], bool)
    fg = foreground(looks.thumbs, frame_of, boxes, looks.size[0]) if search.min_foreground is not None else \
        np.full(len(boxes), np.nan, np.float32)
    ok, local = judged(tracks, detected[frame_of], fg, whole, search.min_foreground, fps=fps,
                       min_boxes=MIN_BOXES if search.track else 1)
    length = np.bincount(tracks) if len(tracks) else np.zeros(0, int)
    track_at, fg_at, first = np.full(len(detected), -1, np.int32), np.full(len(detected), np.nan, np.float32), 0
    looks.chosen = []
    for k, f in enumerate(looks.found):
        mine = [i for i in range(len(f.conf)) if ok[first + i]]
        c = max(mine, key=lambda i: (local[first + i], length[looks.tracks[k][i]], f.conf[i])) if mine else None
        looks.chosen.append(c)
        if c is not None:
            track_at[k], fg_at[k] = looks.tracks[k][c], fg[first + c]
        first += len(f.conf)
    bridged = bridge(detected, track_at, fps=fps, max_gap=search.max_gap if search.track else 0.0)
    return fg_at, bridged


def _images(paths: list[Path], detected: np.ndarray, search: Search, video: VideoInfo | None,
            fps: float) -> Iterator[tuple[int, np.ndarray]]:
    if search.short_side is None:
        return ((i, cv2.imread(str(paths[i]), cv2.IMREAD_COLOR)) for i in detected.tolist())
    assert video is not None, "a search at short_side reads the source video"
    return read_frames(video, detected, fps=fps, short_side=search.short_side)


def detect_persons(frames_dir: str | Path, out_parquet: str | Path, *, detector: PersonDetector,
                   every: int = 1, batch: int = 16, search: Search = Search(), fps: float = 25.0) -> pa.Table:
    """Run `detector` on every `every`-th frame and write the persons parquet; returns its table.

    A plain search reads the whole JPGs in batches of `batch` on a background thread. Otherwise each detection frame
    is looked at as `search` says, decoded from the source video the frames' manifest names (written at `fps`) when
    `search.short_side` is set. Boxes are recorded in the stored JPGs' pixels. An untrained detector's boxes are
    noise, so then every frame passes, `reason` says why, and the detector runs as a plain search (its boxes
    decide nothing).
    """
    paths = frame_paths(frames_dir)
    n = len(paths)
    detected = detection_frames(n, every)
    search = search if detector.trained else Search()
    video = probe(video_of(frames_dir)) if search.short_side is not None else None
    with tqdm(total=len(detected), desc=f"persons {Path(frames_dir).name}", unit="frame", disable=None) as bar:
        if search.plain:
            looks = _plain(detector, [paths[i] for i in detected], batch, bar)
        else:
            looks = _searched(detector, _images(paths, detected, search, video, fps), search, fps, bar)
    if search.plain:
        fg, bridged = np.full(len(detected), np.nan, np.float32), np.zeros(len(detected), bool)
    else:
        fg, bridged = _follow(looks, detected, search, fps)
    near = looks.near()
    saw = ~np.isnan(near[:, 0]) | bridged
    if looks.size[0]:  # detection pixels -> stored-frame pixels
        rows, columns = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE).shape
        scale = np.array([columns / looks.size[0], rows / looks.size[1]] * 2, np.float32)
        near = near * scale
        looks.found = [Found(f.boxes * scale, f.conf, f.by) for f in looks.found]
    table = _table(paths, detected, looks, near, fg, saw, bridged, trained=detector.trained)
    metadata = detector.provenance | {"every": every}
    if not search.plain:
        metadata["search"] = json.dumps(search.as_dict())
    table = table.replace_schema_metadata({k: str(v) for k, v in metadata.items()})
    with atomic_output(out_parquet) as tmp:
        pq.write_table(table, tmp)
    return table


def _table(paths: list[Path], detected: np.ndarray, looks: Looks, near: np.ndarray, fg: np.ndarray, saw: np.ndarray,
           bridged: np.ndarray, *, trained: bool) -> pa.Table:
    n = len(paths)
    counts, best = np.zeros(n, np.int16), np.zeros(n, np.float32)
    boxes: list[list[float] | None] = [None] * n
    near_box: list[list[float] | None] = [None] * n
    track, fgs, by = np.full(n, -1, np.int32), np.full(n, np.nan, np.float32), [""] * n
    person, reason = carry(n, detected, saw)
    for k, (i, f) in enumerate(zip(detected.tolist(), looks.found)):
        counts[i], fgs[i] = len(f.conf), fg[k]
        if len(f.conf):
            best[i], boxes[i] = f.conf[0], f.boxes[0].tolist()
        c = looks.chosen[k]
        if bridged[k]:
            by[i], reason[i] = "bridge", BRIDGE_REASON
        elif c is not None:
            near_box[i], by[i], track[i] = near[k].tolist(), f.by[c], looks.tracks[k][c]
        elif len(f.conf):
            reason[i] = WALL_REASON
    by = [b or ("carried" if person[i] else "") for i, b in enumerate(by)]
    if not trained:
        person, reason, by = np.ones(n, bool), [UNTRAINED_REASON] * n, ["untrained"] * n
    is_detected = np.zeros(n, bool)
    is_detected[detected] = True
    return pa.table([[int(p.stem) for p in paths], is_detected, counts, best, boxes, near_box, person, reason, by,
                     track, pa.array(fgs, mask=np.isnan(fgs))], schema=SCHEMA)


def summary(table: pa.Table, out_parquet: str | Path, *, key: str | None = None, fix: str | None = None) -> None:
    """One line on what the filter kept and what found it, and how many detected frames show nobody or several
    people (the paper found 15 % and 3 %); a warning naming the video (`key`, default the parquet's stem) when it
    kept less than LOW_SHARE, with `fix` (default: the persons keys to try)."""
    person = table["person"].to_numpy(zero_copy_only=False)
    by = table.filter(table["person"])["found_by"].value_counts().to_pylist()
    found = ", ".join(f"{d['counts']} {d['values']}" for d in sorted(by, key=lambda d: -d["counts"]))
    counts = table.filter(table["detected"])["n_persons"].to_numpy()
    print(f"{out_parquet}: {person.sum()} of {len(person)} frames pass the person filter ({person.mean():.0%}"
          f"{': ' + found if found else ''}); of {len(counts)} detected frames {(counts == 0).mean():.0%} show "
          f"nobody and {(counts > 1).mean():.0%} several people")
    if person.mean() < LOW_SHARE:
        warn(low_share_advice(key or Path(out_parquet).stem, float(person.mean()), fix=fix))
