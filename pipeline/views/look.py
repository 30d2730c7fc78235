"""Look at any video's artifacts: the dataset's status, one video's details, its timeline, a contact sheet.

Everything is read from what the stages wrote (data/, features/, reports/) and, for what would rerun,
from `dvc status` itself: nothing is re-derived.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.annotations.videotable import UNANNOTATED
from pipeline.core import params
from pipeline.core.atomic import atomic_output
from pipeline.core.commandline import dvc_executable
from pipeline.core.errors import BouldersegError
from pipeline.media.frames import MANIFEST

class DvcBusy(BouldersegError):
    """`dvc status` could not run because another DVC process (a `dvc repro`) holds the project's lock."""


def dvc_status(root: Path = Path(".")) -> dict[str, list]:
    """`dvc status --json`: stage -> what changed; DVC's own message reaches the user unchanged (`DvcBusy` when it
    is DVC's lock)."""
    r = subprocess.run([dvc_executable(), "status", "--json"], cwd=root, capture_output=True, text=True)
    if r.returncode:
        busy = "Unable to acquire lock" in r.stderr or "is busy, it is being blocked by" in r.stderr
        error = DvcBusy if busy else BouldersegError
        raise error(f"`dvc status` failed in {root.resolve()}: {r.stderr.strip()[-500:]}")
    return {name: changes for name, changes in json.loads(r.stdout or "{}").items()
            if not name.startswith(("dvc.yaml", "params.yaml"))}


def stale_stages(root: Path = Path(".")) -> list[str]:
    """Stages `dvc status` says would rerun, in its order."""
    return list(dvc_status(root))


def video_of(stage: str, keys: Iterable[str]) -> str | None:
    """The video a per-video stage runs on: `labels@KEY` or `features-FAMILY@KEY-BACKBONE`; None for the others."""
    _, _, item = stage.partition("@")
    if stage.startswith("train-"):
        return None
    return next((k for k in sorted(keys, key=len, reverse=True) if item == k or item.startswith(f"{k}-")), None)


def entry(p: params.Params, key: str) -> params.Video | params.UnannotatedVideo:
    """A video's entry in either table of params.yaml."""
    return p.videos.get(key) or p.unannotated[key]


def manifest(root: Path, key: str) -> dict | None:
    """The frames stage's manifest of a video (fps, frames, duration_s, size, source), or None before it ran."""
    path = root / "data/frames" / key / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def person_share(path: Path) -> float | None:
    """Share of a video's frames that pass the person filter, or None before the persons stage ran."""
    return float(np.mean(pq.read_table(path, columns=["person"])["person"].to_numpy())) if path.exists() else None


def artifacts(p: params.Params, key: str, root: Path = Path(".")) -> tuple[Path, Path]:
    """(persons parquet, features directory holding <backbone>/<key>.zarr) of a video of either table."""
    if key in p.unannotated:
        return root / UNANNOTATED / "persons" / f"{key}.parquet", root / UNANNOTATED / "features"
    return root / "data/persons" / f"{key}.parquet", root / "features"


def video_frames(p: params.Params, key: str, root: Path = Path(".")) -> tuple[pd.DataFrame, dict]:
    """Per frame of one video: time, label (when annotated and labelled), person and box; and its frames manifest."""
    if key not in p.videos and key not in p.unannotated:
        raise BouldersegError(f"no video '{key}' in params.yaml; videos and unannotated list "
                              f"{', '.join([*p.videos, *p.unannotated])}.")
    m = manifest(root, key)
    if m is None:
        raise BouldersegError(f"{root / 'data/frames' / key / MANIFEST} not found: run `dvc repro` first.")
    df = pd.DataFrame({"frame": np.arange(m["frames"])})
    df["time"] = df["frame"] / m["fps"]
    labels = root / "data/labels" / f"{key}.csv"
    if labels.exists():
        df["label"] = pd.read_csv(labels)["label"].to_numpy()
    persons = artifacts(p, key, root)[0]
    if persons.exists():
        t = pq.read_table(persons, columns=["person", "near_box"]).to_pandas()
        df["person"], df["box"] = t["person"].to_numpy(), t["near_box"].to_numpy()
    return df, m


def predictions_of(key: str, root: Path = Path(".")) -> dict[str, np.ndarray]:
    """'backbone + head' -> (N,) predicted labels of one video, from every trained row's cross-validation."""
    out = {}
    for f in sorted((root / "reports/predictions").glob("*/*.parquet")):
        t = pq.read_table(f, columns=["video", "frame", "pred"], filters=[("video", "==", key)]).to_pandas()
        if len(t):
            out[f"{f.parent.name} + {f.stem}"] = t.sort_values("frame")["pred"].to_numpy()
    return out


def tracked_boxes(df: pd.DataFrame) -> np.ndarray:
    """(N, 4) float (x0, y0, x1, y1) of the tracked person on frames that pass the person filter: interpolated between
    two boxes the persons stage found one detection stride (persons.every) apart, else the last box before the frame,
    carried for less than a stride. NaN elsewhere: no person, or frames the filter bridged after a detection that
    missed (no box to place: a line across the gap, or the next box drawn early, would frame where nobody is)."""
    boxes = np.full((len(df), 4), np.nan)
    if "box" not in df:
        return boxes
    seen = np.array([b is not None and len(b) == 4 for b in df["box"]], bool)
    if not seen.any():
        return boxes
    known = np.flatnonzero(seen)
    coords = np.stack(df["box"].to_numpy()[known]).astype(float)  # (K, 4)
    step = int(np.diff(known).min()) if len(known) > 1 else 1  # the detection stride
    for a, b, ca, cb in zip(known[:-1], known[1:], coords[:-1], coords[1:]):
        if b - a <= step:
            boxes[a:b + 1] = ca + (np.arange(b - a + 1)[:, None] / (b - a)) * (cb - ca)
    frames = np.arange(len(df))
    last = np.searchsorted(known, frames, side="right") - 1  # into known: the last box at or before each frame
    fill = np.isnan(boxes[:, 0]) & (last >= 0) & (frames - known[np.maximum(last, 0)] < step)
    boxes[fill] = coords[last[fill]]
    person = df["person"].to_numpy(bool) if "person" in df else seen
    boxes[~person] = np.nan
    return boxes


def contact_sheet(frames_dir: Path, df: pd.DataFrame, out_png: Path, *, n: int = 12,
                  columns: int = 4) -> dict[int, tuple[int, int, int, int] | None]:
    """`n` evenly spaced frames in a grid, each captioned with its index, time and label, the tracked person's box
    drawn on every one that shows a person (`tracked_boxes`); returns each tile's frame -> the box drawn, or None."""
    import cv2

    picks = np.linspace(0, len(df) - 1, min(n, len(df))).round().astype(int)
    boxes = tracked_boxes(df)
    tiles, drawn = [], {}
    for i in picks:
        image = cv2.imread(str(frames_dir / f"{i:06d}.jpg"))
        row = df.iloc[i]
        drawn[int(i)] = None if np.isnan(boxes[i]).any() else tuple(int(round(c)) for c in boxes[i])
        if drawn[int(i)] is not None:
            x0, y0, x1, y1 = drawn[int(i)]
            cv2.rectangle(image, (x0, y0), (x1, y1), (0, 200, 255), 2)
        caption = f"#{i}  {row['time']:.2f} s  {row.get('label', '')}"
        cv2.rectangle(image, (0, 0), (image.shape[1], 22), (0, 0, 0), -1)
        cv2.putText(image, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(image)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    grid = np.vstack([np.hstack(tiles[r : r + columns]) for r in range(0, len(tiles), columns)])
    _, png = cv2.imencode(".png", grid)
    with atomic_output(out_png) as tmp:
        tmp.write_bytes(png.tobytes())
    return drawn
