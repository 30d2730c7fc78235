"""Look at the crops `features.crop: climber` fed a backbone: `boulderseg inspect crops VIDEO`.

Per window of a feature store that has `crop_boxes`: its centre frame (the middle of the clip it fed) cut from the
stored JPG to its crop box, the climber's track box at that frame (`pipeline.features.crop.track_boxes`) drawn in
it, and the share of the crop the climber fills (area of track box ∩ crop / area of crop). A window that saw no
climber was fed the whole frame (its crop box is the frame): "whole frame".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError, warn

TILE = 192  # pixels a side of each tile's picture
CAPTION = 22  # rows of the caption strip under it
COLUMNS = 6
SAMPLE = 24  # windows on a sheet without --every
BOX_COLOUR = (0, 200, 255)  # BGR, as look.contact_sheet draws person boxes
FIX = "set features.crop: climber in params.yaml and run `dvc repro`"


def read_crops(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A store's (W, 4) float32 crop boxes (x0, y0, x1, y1, stored-frame pixels), (W, T) int clip frames and attrs;
    a BouldersegError naming the store when it is missing or was not cut around the climber."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, zarr.errors.BaseZarrError):
        raise BouldersegError(f"{path}: no feature store there: {FIX} to make it.") from None
    if "crop_boxes" not in group or "clip_frames" not in group:
        raise BouldersegError(f"{path}: no crop_boxes in this store: its clips were not cut around the climber. "
                              f"To see crops, {FIX}.")
    return group["crop_boxes"][:].astype(np.float32), group["clip_frames"][:], dict(group.attrs)


def find_store(features_dir: Path, video: str, listed: list[str], backbone: str | None) -> tuple[str, Path]:
    """(backbone, store path): `backbone`'s, else the first of `listed` whose store has crop_boxes."""
    if backbone is not None:
        return backbone, features_dir / backbone / f"{video}.zarr"
    for name in listed:
        if (features_dir / name / f"{video}.zarr" / "crop_boxes").is_dir():
            return name, features_dir / name / f"{video}.zarr"
    if not listed:
        raise BouldersegError(f"features.backbones lists no backbone, so there is no store of {video}: {FIX}.")
    stores = ", ".join(str(features_dir / name / f"{video}.zarr") for name in listed)
    raise BouldersegError(f"no feature store of {video} has crop_boxes ({stores}): {FIX}.")


def share_of(box: np.ndarray, crop: np.ndarray) -> float:
    """Area of (4,) `box` ∩ (4,) `crop` / area of `crop` (both x0, y0, x1, y1); NaN for a NaN box."""
    w = min(box[2], crop[2]) - max(box[0], crop[0])
    h = min(box[3], crop[3]) - max(box[1], crop[1])
    area = (crop[2] - crop[0]) * (crop[3] - crop[1])
    return float("nan") if np.isnan(box).any() else float(max(w, 0) * max(h, 0) / area)


def window_facts(crops: np.ndarray, clip_frames: np.ndarray, track: np.ndarray, size: tuple[int, int],
                 fps: float) -> list[dict]:
    """Per window of (W, 4) `crops` and (W, T) `clip_frames`, with the (n_frames, 4) climber `track` in (rows,
    columns) `size` frames: its centre frame and time, crop, track box there (None: none), the climber's share of
    the crop and of the frame (None without a box or for a whole-frame window), and whether it was the whole frame."""
    rows, cols = size
    whole = np.array([0, 0, cols, rows], np.float32)
    out = []
    for w, (crop, clip) in enumerate(zip(crops, clip_frames)):
        frame = int(clip[len(clip) // 2])
        box, fell_back = track[frame], bool(np.allclose(crop, whole))
        seen = not fell_back and not np.isnan(box).any()
        out.append({"window": w, "frame": frame, "time": round(frame / fps, 3),
                    "crop": [round(float(c), 2) for c in crop],
                    "box": [round(float(c), 2) for c in box] if not np.isnan(box).any() else None,
                    "share": share_of(box, crop) if seen else None,
                    "frame_share": share_of(box, whole) if seen else None, "whole_frame": fell_back})
    return out


def sample(n_windows: int, every: int | None) -> np.ndarray:
    """The windows a sheet shows: every `every`-th, else up to SAMPLE evenly spaced."""
    if every:
        return np.arange(0, n_windows, every)
    return np.unique(np.linspace(0, n_windows - 1, min(SAMPLE, n_windows)).round().astype(int))


def tile(image: np.ndarray, fact: dict) -> np.ndarray:
    """(H, W, 3) BGR stored frame -> (TILE + CAPTION, TILE, 3): cut to the window's crop, fitted into a square
    (letterboxed when it is not one), the track box drawn, the caption under it."""
    import cv2

    x0, y0, x1, y1 = fact["crop"]
    top, left = max(int(np.floor(y0)), 0), max(int(np.floor(x0)), 0)
    cut = image[top : max(int(np.ceil(y1)), top + 1), left : max(int(np.ceil(x1)), left + 1)]
    k = TILE / max(cut.shape[:2])
    h, w = max(round(cut.shape[0] * k), 1), max(round(cut.shape[1] * k), 1)
    resized = cv2.resize(cut, (w, h), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    out = np.zeros((TILE + CAPTION, TILE, 3), np.uint8)
    dy, dx = (TILE - h) // 2, (TILE - w) // 2
    out[dy : dy + h, dx : dx + w] = resized
    if fact["box"] is not None:
        bx0, by0, bx1, by1 = fact["box"]
        corners = [(round((bx - left) * k) + dx, round((by - top) * k) + dy) for bx, by in ((bx0, by0), (bx1, by1))]
        cv2.rectangle(out[:TILE], corners[0], corners[1], BOX_COLOUR, 2)
    share = ("whole frame" if fact["whole_frame"] else "no box" if fact["share"] is None
             else f"{100 * fact['share']:.0f}% climber")
    cv2.putText(out, f"w{fact['window']}  {fact['time']:.2f} s  {share}", (4, TILE + 15), cv2.FONT_HERSHEY_SIMPLEX,
                0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def crop_sheet(frames_dir: Path, facts: list[dict], out_png: Path, *, columns: int = COLUMNS) -> tuple[int, int]:
    """Write the tiles of `facts` (`window_facts` rows) in a grid to `out_png`; returns its (rows, columns) of
    tiles. Each tile is (TILE + CAPTION, TILE) pixels."""
    import cv2

    tiles = []
    for fact in facts:
        path = frames_dir / f"{fact['frame']:06d}.jpg"
        image = cv2.imread(str(path))
        if image is None:
            raise BouldersegError(f"{path}: missing or unreadable frame. Rerun the frames stage (`dvc repro`).")
        tiles.append(tile(image, fact))
    columns = min(columns, len(tiles))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    grid = np.vstack([np.hstack(tiles[r : r + columns]) for r in range(0, len(tiles), columns)])
    _, png = cv2.imencode(".png", grid)
    with atomic_output(out_png) as tmp:
        tmp.write_bytes(png.tobytes())
    return len(tiles) // columns, columns


def summarise(facts: list[dict]) -> dict:
    """Over every window: how many, the median, least and most share of its crop the climber fills (over those
    cut around a box at their centre frame), and how many were fed the whole frame."""
    shares = [f["share"] for f in facts if f["share"] is not None]
    return {"windows": len(facts), "with_box": len(shares), "whole_frame": sum(f["whole_frame"] for f in facts),
            "share_median": float(np.median(shares)) if shares else None,
            "share_min": min(shares, default=None), "share_max": max(shares, default=None)}


def summary_line(video: str, backbone: str, s: dict) -> str:
    """`summarise`'s dict as the one line `inspect crops` prints."""
    share = ("no window has a climber's box at its centre frame" if s["share_median"] is None else
             f"the climber fills a median {100 * s['share_median']:.0f}% of the crop (range "
             f"{100 * s['share_min']:.0f}-{100 * s['share_max']:.0f}%, {s['with_box']} windows with a box)")
    return f"{video} {backbone}: {s['windows']} windows; {share}; {s['whole_frame']} whole-frame windows"


def inspect_crops(video: str, *, frames_dir: Path, persons: Path, features_dir: Path, listed: list[str],
                  backbone: str | None, out_png: Path | None, every: int | None) -> dict:
    """Read the store, draw the sheet (default reports/look/VIDEO/crops-BACKBONE.png) and return what
    `inspect crops --json` prints: backbone, store, sheet, summary and the sheet's tiles."""
    from pipeline.features.crop import track_boxes, window_boxes

    backbone, path = find_store(features_dir, video, listed, backbone)
    crops, clip_frames, attrs = read_crops(path)
    manifest = json.loads((frames_dir / "manifest.json").read_text())
    track, size = track_boxes(persons, manifest["frames"]), (manifest["height"], manifest["width"])
    if not np.array_equal(window_boxes(track, clip_frames, size, margin=attrs["preprocessing"]["crop"]["margin"]), crops):
        warn(f"{persons} holds another track than {path} was cut around: the boxes drawn are the current ones. "
             "Rerun `dvc repro`.")
    facts = window_facts(crops, clip_frames, track, size, manifest["fps"])
    out_png = out_png or Path("reports/look") / video / f"crops-{backbone}.png"
    shown = [facts[w] for w in sample(len(facts), every)]
    grid = crop_sheet(frames_dir, shown, out_png)
    return {"video": video, "backbone": backbone, "store": str(path), "contact_sheet": str(out_png),
            "grid": list(grid), "summary": summarise(facts), "tiles": shown}
