"""Segment a video nobody annotated with a model bundle: frames -> persons -> features -> head -> phases.

Every step is redone exactly as the bundle's model was trained (frame size, person filter, backbone
and its weights, windows, post-processing: all read from `bundle.json`); only how fast it runs
(device, workers, batch sizes) comes from params.yaml's `runtime` section. Nothing in the dataset or
`dvc.lock` is touched: the intermediate artifacts go to `OUT/work/`, where a rerun reuses the features.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.annotations.segments import LabelPolicy
from pipeline.annotations.videotable import UNANNOTATED
from pipeline.core import params
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError, warn
from pipeline.features import store
from pipeline.learning import bundle
from pipeline.learning.dataset import nearest_window
from pipeline.media.frames import MANIFEST
from pipeline.views import phases


@dataclass(frozen=True)
class Prediction:
    frames: pd.DataFrame  # frame, time, label, confidence, person
    segments: pd.DataFrame  # phases in the annotators' words (pipeline.views.phases.segments_table)
    report: dict


def segment_video(video: Path, bundle_dir: Path, out_dir: Path, *, runtime: params.Runtime) -> Prediction:
    """Run every step on `video` and write segments.csv/.xlsx, frames.csv, timeline.png and report.json to `out_dir`."""
    from pipeline.features.crop import Crop
    from pipeline.features.extract import extract_features
    from pipeline.media.frames import extract_frames
    from pipeline.persons import registry
    from pipeline.persons.filter import Search, detect_persons, summary

    head, meta = bundle.load(bundle_dir)
    bundle.require_checkable(meta, bundle_dir)  # before any work
    b, w = meta["backbone"], meta["weights"]
    work = out_dir / "work"
    extract_frames(video, work / "frames", fps=b["fps"], short_side=bundle.short_side(meta),
                   jpg_quality=meta["frames"]["jpg_quality"], workers=runtime.frames_workers)
    persons = params.Persons(**meta["persons"])  # a bundle from before the search keys looks as it was trained
    detector = registry.build(persons, pretrained=w["pretrained"], weights_dir=runtime.weights_dir,
                               seed=w["seed"], device=runtime.device)
    table = detect_persons(work / "frames", work / "persons.parquet", detector=detector, every=persons.every,
                           batch=runtime.persons_batch, search=Search.of(persons), fps=b["fps"])
    summary(table, work / "persons.parquet", key=Path(video).stem,
            fix="The others are reported as nobody in frame. The bundle's persons settings decide this: retrain with "
                "persons.track true, persons.tiles [2, 3] or a lower persons.conf to change them.")
    person = table["person"].to_numpy()
    stores = []
    for i, m in enumerate(bundle.members(meta)):  # a fusion's backbones, each computed as it was for training
        zarr = work / ("features.zarr" if len(bundle.members(meta)) == 1 else f"features-{m['backbone']}.zarr")
        fs, _ = extract_features(
            work / "frames", zarr, backbone=m["backbone"], family=m["family"], persons=work / "persons.parquet",
            pretrained=w["pretrained"], seed=w["seed"], pooling=m["preprocessing"].get("frame_pooling") or "stack",
            clip=m["preprocessing"]["clip"]["rule"], crop=Crop(**m["preprocessing"].get("crop") or {}),
            fps=m["fps"], window=m["window"], stride=m["stride"], dtype=m["dtype"], skip_static=m.get("skip_static"),
            pose_smoothing=m.get("pose_smoothing") or "none", weights_dir=runtime.weights_dir,
            batch_size=runtime.features_batch, device=runtime.device, workers=runtime.features_workers)
        bundle.check_store(meta, fs.attrs, store_path=zarr, bundle_dir=bundle_dir, member=i)
        stores.append(fs)
    return write_outputs(video, head, meta, bundle_dir, out_dir, person=person, stores=stores,
                         frames_dir=work / "frames")


def segment_unannotated(key: str, video: Path, bundle_dir: Path, *, root: Path = UNANNOTATED) -> Prediction:
    """The same for a video of the `unannotated` table, from the persons and features the pipeline stored
    for it under `root` (checked against the bundle's settings), into `root/predicted/<key>/`."""
    import pyarrow.parquet as pq

    from pipeline.persons.filter import Search

    head, meta = bundle.load(bundle_dir)
    bundle.require_checkable(meta, bundle_dir)
    persons_parquet = root / "persons" / f"{key}.parquet"
    zarrs = [root / "features" / m["backbone"] / f"{key}.zarr" for m in bundle.members(meta)]
    for path in (persons_parquet, *zarrs):
        if not path.exists():
            raise BouldersegError(f"{path} not found: run `dvc repro` first, so every unannotated video has its "
                                  "persons and features.")
    stores = [store.read(z) for z in zarrs]
    for i, (z, fs) in enumerate(zip(zarrs, stores)):
        bundle.check_store(meta, fs.attrs, store_path=z, bundle_dir=bundle_dir, member=i)
    table = pq.read_table(persons_parquet)
    stored = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    ps = params.Persons(**meta["persons"])
    settings = ("detector", "conf", "every", *(("model", "imgsz") if ps.detector == "yolo" else ()))
    wanted = {k: str(getattr(ps, k)) for k in settings}
    search, trained = Search.of(ps), ps.detector != "yolo" or meta["weights"]["pretrained"]
    wanted["search"] = None if search.plain or not trained else json.dumps(search.as_dict())  # how it looked
    if any(stored.get(k) != v for k, v in wanted.items()):
        raise BouldersegError(f"{persons_parquet}: detected with {({k: stored.get(k) for k in wanted})}, but the bundle "
                              f"{bundle_dir} was trained with {wanted}: run `dvc repro` with the bundle's params.")
    return write_outputs(video, head, meta, bundle_dir, root / "predicted" / key, person=table["person"].to_numpy(),
                         stores=stores, frames_dir=Path("data/frames") / key)


def notes(manifest: dict, meta: dict) -> list[str]:
    """What the coach should know of how this video was seen: frames below the bundle's frames.short_side."""
    wanted, (w, h) = bundle.short_side(meta), (manifest["width"], manifest["height"])
    if wanted and min(w, h) < wanted:
        note = (f"the video's frames are {w}x{h}, below the bundle's frames.short_side ({wanted}): a small source is "
                "never upscaled, and each backbone resizes it to its own input")
        warn(note)
        return [note]
    return []


def nobody_label(meta: dict) -> str:
    """The class of frames with nobody in them: the bundle's labels.default (a bundle written before it recorded
    that key was trained with the default one, "nothing")."""
    return meta["labels"].get("default", LabelPolicy.default)


def write_outputs(video: Path, head, meta: dict, bundle_dir: Path, out_dir: Path, *, person: np.ndarray,
                  stores: list[store.FeatureSet], frames_dir: Path) -> Prediction:
    """Predict every frame from a video's window features (a fusion's stores concatenated, in the bundle's order)
    and write the coach's files into `out_dir`. A frame the person filter removed is the default class (nobody in
    frame) in every file; frames.csv keeps the head's confidence in what it predicted there, and says `person`."""
    from pipeline.views.plots import plot_rows

    b, n, nobody = meta["backbone"], len(person), nobody_label(meta)
    features = np.concatenate([np.asarray(fs.features) for fs in stores], axis=1)  # (W, D1 + D2 + …)
    labels, confidence = bundle.predict(head, meta, features, nearest_window(np.asarray(stores[0].frame_range), n))
    labels = phases.with_nobody(labels, person, nobody)
    classes = [*meta["classes"], *([] if nobody in meta["classes"] else [nobody])]  # dropped from training
    fps = b["fps"]
    manifest = json.loads((frames_dir / MANIFEST).read_text())
    duration = manifest["duration_s"]  # the frames stage timed the video
    frames = pd.DataFrame({"frame": np.arange(n), "time": np.round(np.arange(n) / fps, 4), "label": labels,
                           "confidence": np.round(confidence, 4), "person": np.asarray(person, dtype=bool)})
    words = phases.annotator_words(meta["labels"]["map"], classes)
    segments = phases.segments_table(labels, fps=fps, duration=duration, words=words)
    report = phases.report(labels, person, fps=fps, duration=duration) | {
        "video": str(video), "model": str(bundle_dir), "backbone": b["backbone"], "head": meta["head"],
        "nobody_in_frame_label": nobody, "notes": notes(manifest, meta)}
    phases.write_segments(segments, out_dir)
    with atomic_output(out_dir / "frames.csv") as tmp:
        frames.to_csv(tmp, index=False)
    with atomic_output(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    plot_rows(f"{Path(video).name}: {b['backbone']} + {meta['head']}", {"predicted": labels}, classes,
              fps=fps, out_png=out_dir / "timeline.png", person=person)
    return Prediction(frames, segments, report)
