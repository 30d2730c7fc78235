"""What `status` and `inspect video` say, as data (their --json) and as the text a terminal shows.

Read from what the stages wrote and, for what would rerun, from `dvc status`: `stale` is None while DVC is busy (a
`dvc repro` holds its lock), and every row then says so instead of failing.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.core import params
from pipeline.persons import LOW_SHARE, low_share_advice
from pipeline.views.look import DvcBusy, artifacts, entry, manifest, person_share, stale_stages, video_of
from pipeline.views.tables import table

BUSY = "unknown (DVC is busy)"


def stale_or_busy(root: Path = Path(".")) -> list[str] | None:
    """The stages `dvc status` says would rerun; None while DVC is busy (its lock held), as the review app says."""
    try:
        return stale_stages(root)
    except DvcBusy:  # a `dvc repro` running; anything else (not a DVC project, say) keeps its own message
        return None


def status(p: params.Params, stale: list[str] | None, root: Path = Path(".")) -> dict:
    """Per video of both tables: climb, view, annotated, frames, person share, features present and its stale
    stages; the stale stages of no one video; stale lists are None while DVC is busy."""
    backbones = [b for _, b in p.features.backbones.items()]
    keys = [*p.videos, *p.unannotated]
    videos = []
    for key in keys:
        v, m = entry(p, key), manifest(root, key)
        persons, features = artifacts(p, key, root)
        share = person_share(persons)
        videos.append({"video": key, "climb": v.climb, "view": v.view, "annotated": key in p.videos,
                       "frames": m["frames"] if m else None, "person_share": share,
                       "low_person_share": low_share_advice(key, share) if share is not None and share < LOW_SHARE
                       else None,
                       "features": [b for b in backbones if (features / b / f"{key}.zarr").exists()],
                       "stale": None if stale is None else [s.partition("@")[0] for s in stale
                                                            if video_of(s, keys) == key]})
    return {"videos": videos, "dvc_busy": stale is None,
            "also_stale": None if stale is None else [s for s in stale if video_of(s, keys) is None]}


def status_text(s: dict) -> str:
    """`status`'s table, the low person shares and the stale stages of no one video."""
    rows = [[v["video"], v["climb"] or "", v["view"] or "", "yes" if v["annotated"] else "no",
             "-" if v["frames"] is None else v["frames"],
             "-" if v["person_share"] is None else f"{100 * v['person_share']:.0f} %"
             + (" (low)" if v["low_person_share"] else ""),
             ", ".join(v["features"]) or "-",
             BUSY if v["stale"] is None else ", ".join(v["stale"]) or "up to date"] for v in s["videos"]]
    text = table(rows, ["video", "climb", "view", "annotated", "frames", "person", "features", "dvc would rerun"])
    also = s["also_stale"]
    return "\n".join([text, *(f"low person share: {v['low_person_share']}" for v in s["videos"] if v["low_person_share"]),
                      f"aggregate stages: {BUSY}" if also is None else f"also stale: {', '.join(also)}" if also
                      else "no aggregate stage is stale"])


def video(p: params.Params, key: str, df: pd.DataFrame, m: dict, root: Path = Path(".")) -> dict:
    """One video's source metadata, frames on disk, label shares, person share and feature stores."""
    from pipeline.features import store

    stores = {b: artifacts(p, key, root)[1] / b / f"{key}.zarr" for _, b in p.features.backbones.items()}
    read = {b: store.read(path).features for b, path in stores.items() if path.exists()}
    return {"video": key, "source": {k: m[k] for k in ("source", "codec", "stated_fps", "mean_fps", "duration_s",
                                                         "source_frames", "rotation")},
            "frames": {"on_disk": len(list((root / "data/frames" / key).glob("*.jpg"))),
                       **{k: m[k] for k in ("fps", "width", "height")}},
            "labels": df["label"].value_counts(normalize=True).to_dict() if "label" in df else None,
            "person_share": float(df["person"].mean()) if "person" in df else None,
            "features": {b: {"shape": list(f.shape), "dtype": str(f.dtype)} for b, f in read.items()}}


def video_text(v: dict) -> str:
    """`inspect video`'s lines."""
    s, f = v["source"], v["frames"]
    lines = [f"{v['video']}: {s['source']}",
             f"  source   {s['codec']}, {s['stated_fps']:g} fps stated ({s['mean_fps']:.3f} mean), "
             f"{s['duration_s']:.2f} s, {s['source_frames']} frames, rotation {s['rotation']}°",
             f"  frames   {f['on_disk']} JPGs on disk at {f['fps']:g} fps, {f['width']}×{f['height']}"]
    if v["labels"] is not None:
        lines.append("  labels   " + ", ".join(f"{c} {100 * share:.1f} %" for c, share in v["labels"].items()))
    if v["person_share"] is not None:
        lines.append(f"  person   {100 * v['person_share']:.1f} % of frames pass the person filter")
    lines += [f"  features {b}: {tuple(x['shape'])} {x['dtype']}" for b, x in v["features"].items()]
    return "\n".join(lines)
