"""What the review app shows, read from what the stages wrote (data/, reports/): nothing is recomputed here.

Tracks are runs of one label, `{"label", "start", "end"}` in frames (end exclusive), so a page draws a
1,000-frame video's tracks from a few dozen numbers."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.annotations.catalog import RAW
from pipeline.annotations.segments import LabelPolicy
from pipeline.annotations.videotable import UNANNOTATED, VideoEntry, label_video
from pipeline.core import params
from pipeline.core.errors import BouldersegError
from pipeline.core.names import name_problem
from pipeline.media.probe import FRAME_NAME
from pipeline.persons import LOW_SHARE, low_share_advice
from pipeline.views.look import artifacts, entry, manifest, person_share, predictions_of, video_frames, video_of
from pipeline.views.phases import phases, with_nobody

PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4")
GREY = "#999999"  # the default class: no phase (in a prediction, nobody in frame)


class UnknownVideo(BouldersegError):
    """A key that is not a registered video (or not a key at all): never turned into a path."""


def registered(p: params.Params, key: str) -> str:
    """`key` if it names a video of either table; checked by the key rule before anything else."""
    if name_problem(key) is not None or (key not in p.videos and key not in p.unannotated):
        raise UnknownVideo(f"no video '{key}'")
    return key


def runs(labels: np.ndarray | list) -> list[dict]:
    return [{"label": r.label, "start": r.start, "end": r.end} for r in phases(list(labels))]


def colours(classes: Sequence[str], default: str = LabelPolicy.default) -> dict[str, str]:
    """Class -> "#rrggbb", the one palette of every page and report: `default` grey, the others in turn."""
    others = [c for c in classes if c != default]
    return {c: GREY if c == default else PALETTE[others.index(c) % len(PALETTE)] for c in classes}


def predicted(p: params.Params, key: str, root: Path) -> pd.DataFrame | None:
    """`predict --all-unannotated`'s frames.csv (frame, time, label, confidence) of a video, if any, its frames
    with nobody in them (the video's persons table) labels.default: as `predict` writes them now, and as an older
    `predict`, which gave them the head's label, did not."""
    path = root / UNANNOTATED / "predicted" / key / "frames.csv"
    if not path.exists():
        return None
    guess = pd.read_csv(path)
    persons = artifacts(p, key, root)[0]
    person = pq.read_table(persons, columns=["person"])["person"].to_numpy() if persons.exists() else None
    if person is not None and len(person) == len(guess):  # else a prediction of other frames: shown as it is
        guess["label"] = with_nobody(guess["label"], person, p.labels.default)
    return guess


def model_of(key: str, root: Path) -> str | None:
    """What made a video's prediction: "bundle dir (backbone + head)", from its report.json."""
    path = root / UNANNOTATED / "predicted" / key / "report.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    return f"{r['model']} ({r['backbone']} + {r['head']})"


def head_accuracy(key: str, root: Path) -> dict[str, float]:
    """'backbone + head' -> cross-validated accuracy (percent) on this video's scored frames."""
    out = {}
    for f in sorted((root / "reports/predictions").glob("*/*.parquet")):
        t = pq.read_table(f, columns=["video", "label", "pred", "scored"], filters=[("video", "==", key)]).to_pandas()
        t = t[t["scored"]]
        if len(t):
            out[f"{f.parent.name} + {f.stem}"] = round(100 * float((t["label"] == t["pred"]).mean()), 2)
    return out


def video_row(p: params.Params, key: str, stale: list[str] | None, root: Path) -> dict:
    """One row of the videos page; `stale`: the stages `dvc status` names (None: it could not say). An annotated
    video's row is its truth's: a prediction made before it was added neither colours nor ranks it."""
    v, m, annotated = entry(p, key), manifest(root, key), key in p.videos
    labels_path = root / "data/labels" / f"{key}.csv"
    guess = None if annotated else predicted(p, key, root)
    labels = (pd.read_csv(labels_path)["label"] if labels_path.exists()
              else guess["label"] if guess is not None else pd.Series([], dtype=str))
    share = person_share(artifacts(p, key, root)[0])
    return {
        "key": key, "climb": v.climb or "", "view": v.view or "",
        "status": "annotated" if annotated else "predicted" if guess is not None else "unannotated",
        "frames": m["frames"] if m else None,
        "duration_s": round(m["frames"] / m["fps"], 2) if m else None,
        "person_share": None if share is None else round(share, 4),
        "person_warning": low_share_advice(key, share) if share is not None and share < LOW_SHARE else None,
        "phase_shares": {c: round(float(n), 4) for c in p.labels.classes
                         if (n := (labels == c).mean() if len(labels) else 0) > 0},
        "stale": None if stale is None else sorted(s.partition("@")[0] for s in stale
                                                   if video_of(s, [*p.videos, *p.unannotated]) == key),
        "accuracy": head_accuracy(key, root) if annotated else {},
        "mean_confidence": round(float(guess["confidence"].mean()), 4) if guess is not None else None,
    }


def video_detail(p: params.Params, key: str, root: Path) -> dict:
    """One video: fps, frame count, classes, its tracks (truth, each head's cross-validated prediction, or the
    bundle's prediction) and what made the bundle's, the confidence curve, person presence and the tracked person's
    box per frame."""
    df, m = video_frames(p, registered(p, key), root)
    saved = saved_labels(p, key, m, root)
    if saved is not None:
        tracks = {"truth": runs(saved)}
    else:
        tracks = {"truth": runs(df["label"])} if "label" in df else {}
    person = df["person"] if "person" in df else None  # a head's frames with nobody in them: nothing, as predict's
    tracks |= {name: runs(pred if person is None else with_nobody(pred, person, p.labels.default))
               for name, pred in predictions_of(key, root).items()}
    guess = predicted(p, key, root)
    if guess is not None:
        tracks["prediction"] = runs(guess["label"])
    boxes = [None if b is None or len(b) == 0 else [round(float(x), 1) for x in b]
             for b in df["box"]] if "box" in df else None
    return {
        "key": key, "annotated": key in p.videos, "climb": entry(p, key).climb,
        "fps": m["fps"], "frames": int(m["frames"]), "size": [m["width"], m["height"]],
        "classes": list(p.labels.classes), "default": p.labels.default, "tracks": tracks,
        "models": {} if guess is None else {"prediction": model_of(key, root)},
        "confidence": None if guess is None else [round(float(c), 3) for c in guess["confidence"]],
        "person": None if "person" not in df else [bool(x) for x in df["person"]],
        "boxes": boxes,
    }


def saved_labels(p: params.Params, key: str, manifest: dict, root: Path) -> list[str] | None:
    """Per-frame labels of the video's reviewed sheet when it was saved after the labels stage last ran (the
    page then shows what was saved, not the older labels), read as the labels stage reads it."""
    sheet = root / reviewed_sheet(key)
    labels_csv = root / "data/labels" / f"{key}.csv"
    if not sheet.is_file() or (labels_csv.is_file() and labels_csv.stat().st_mtime_ns >= sheet.stat().st_mtime_ns):
        return None
    if key in p.videos and p.videos[key].annotation != reviewed_sheet(key).as_posix():
        return None  # its entry names another annotation now
    try:
        return sheet_labels(p, key, sheet, manifest, root)
    except BouldersegError:  # edited by hand since, or labels.classes changed: the labels stage will say
        return None


def sheet_labels(p: params.Params, key: str, sheet: Path, manifest: dict, root: Path) -> list[str]:
    """Per-frame labels of `sheet` as the labels stage reads it for video `key` (its frame count from the frames
    `manifest`, no probe); BouldersegError when it does not read."""
    v, fps = entry(p, key), float(manifest["fps"])
    policy = LabelPolicy.from_params(p.labels, fps=fps)
    return label_video(VideoEntry(key, v.climb or key, root / v.video, sheet), policy, fps=fps,
                       n_frames=int(manifest["frames"])).labels


def reviewed_sheet(key: str) -> Path:
    """Where a video's reviewed sheet is saved, relative to the project."""
    return RAW / "annotations" / f"{key}.reviewed.xlsx"


def frame_file(p: params.Params, key: str, index: int, root: Path) -> Path:
    """The JPG the frames stage wrote for frame `index` of a registered video."""
    m = manifest(root, registered(p, key)) or {}
    if not 0 <= index < m.get("frames", 0):
        raise UnknownVideo(f"no frame {index} of '{key}'")
    return root / "data/frames" / key / FRAME_NAME.format(index)
