"""Check every artifact on disk against the others and against its record; name the stage that rebuilds it.

Per video: the frames manifest's count = JPGs on disk = label rows = person rows, every JPG decodes,
each feature store reads, holds finite numbers, covers the frames with the windows the params ask
for and records the configuration the params would produce now (weights, preprocessing, the frames
it read); then DVC's own hash check (`dvc status`) over every stage.
"""
from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.core import params
from pipeline.core.errors import BouldersegError
from pipeline.views.look import artifacts, dvc_status, video_of

ORDER = ("labels", "frames", "persons", "features")  # a video's stages, upstream first


@dataclass(frozen=True)
class Problem:
    key: str  # the video ("" for a stage of no one video)
    stage: str  # the DVC stage that rebuilds it
    what: str

    def __str__(self) -> str:
        return f"{self.key or 'pipeline'}: {self.what} (rebuilt by {self.stage})"


def _bad_jpgs(paths: list[Path], workers: int = 4) -> list[str]:
    import simplejpeg

    def bad(path: Path) -> str | None:
        try:
            simplejpeg.decode_jpeg(path.read_bytes())
        except (ValueError, OSError) as e:
            return f"{path.name} ({e})"
        return None

    with ThreadPoolExecutor(workers) as pool:
        return [b for b in pool.map(bad, paths) if b]


def _manifest_frames(manifest: Path) -> int | str:
    """The frame count a frames manifest records, or what is wrong with the manifest."""
    if not manifest.is_file():
        return f"{manifest} is missing"
    try:
        n = json.loads(manifest.read_text())["frames"]
    except (OSError, ValueError) as e:  # unreadable, not UTF-8, not JSON
        return f"{manifest} does not read as JSON ({e})"
    except (KeyError, TypeError):  # JSON, but no object with a "frames" key
        return f'{manifest} records no "frames" count'
    if type(n) is not int or n < 0:
        return f'{manifest} records "frames": {json.dumps(n)}, not a count of frames'
    return n


def _frames(key: str, stage: str, root: Path) -> tuple[int | None, list[Problem]]:
    """(frame count, problems) of a video's frames directory; no count where its manifest is missing or damaged."""
    folder = root / "data/frames" / key
    n = _manifest_frames(folder / "manifest.json")
    if isinstance(n, str):
        return None, [Problem(key, stage, n)]
    paths = sorted(folder.glob("*.jpg"))
    if [p.name for p in paths] != [f"{i:06d}.jpg" for i in range(n)]:
        return n, [Problem(key, stage, f"{folder}: {len(paths)} JPGs, the manifest says 000000-{n - 1:06d}.jpg")]
    bad = _bad_jpgs(paths)
    if bad:
        return n, [Problem(key, stage, f"{folder}: {len(bad)} JPG(s) do not decode: {', '.join(bad[:3])}")]
    return n, []


def _rows(key: str, stage: str, path: Path, n: int) -> list[Problem]:
    """A per-frame table (labels CSV or persons parquet) must hold frames 0 … n-1."""
    if not path.is_file():
        return [Problem(key, stage, f"{path} is missing")]
    try:
        frames = (pd.read_csv(path, usecols=["frame"])["frame"] if path.suffix == ".csv"
                  else pq.read_table(path, columns=["frame"])["frame"].to_pandas())
    except Exception as e:  # noqa: BLE001 - any reader failure means the file is damaged
        return [Problem(key, stage, f"{path} does not read ({e})")]
    if not np.array_equal(frames.to_numpy(), np.arange(n)):
        return [Problem(key, stage, f"{path}: {len(frames)} rows, the frames are {n}")]
    return []


def _features(p: params.Params, key: str, family: str, backbone: str, stage: str, path: Path,
              frames_dir: Path, n: int | None) -> list[Problem]:
    """A store must read, hold finite numbers, cover the frames and record what the params would make now
    (with `n`, the frames are sound: their fingerprint is checked too)."""
    from pipeline.features import backbones, store
    from pipeline.features.crop import Crop
    from pipeline.features.extract import configured_short_side, fingerprint, frame_size, frames_read, store_config
    from pipeline.features.windows import clip_frames, windows

    if not path.exists():
        return [Problem(key, stage, f"{path} is missing")]
    try:
        fs = store.read(path)
    except Exception as e:  # noqa: BLE001 - a corrupted chunk fails in the codec, whichever it is
        return [Problem(key, stage, f"{path} does not read ({type(e).__name__}: {e})")]
    problems, f = [], p.features
    values = fs.features.astype(np.float32)
    if not np.isfinite(values).all():
        problems.append(f"{int((~np.isfinite(values)).sum())} NaN/Inf values")
    spec = backbones.get(backbone, family)
    height = fs.attrs.get("frame_height")
    if n:
        with contextlib.suppress(BouldersegError):  # an unreadable first JPG is the frames check's to report
            height = frame_size([frames_dir / "000000.jpg"])[0]
    expect = store_config(spec, n_frames=fs.attrs.get("n_frames") if n is None else n, height=height,
                          pretrained=p.weights.pretrained, weights_dir=p.runtime.weights_dir, seed=p.weights.seed,
                          pooling=f.pooling(spec.name, spec.family), clip=f.clip, fps=p.data.fps, window=f.window,
                          stride=f.stride, dtype=f.dtype, skip_static=f.skip_static, pose_smoothing=f.pose_smoothing,
                          frames_short_side=configured_short_side(frames_dir),
                          crop=Crop(**f.crop_settings()))
    expect["preprocessing"].setdefault("crop", None)  # a store cut around the climber, under crop none, differs too
    if n is not None:
        ranges = windows(n, window=f.window, stride=f.stride)
        if not np.array_equal(fs.frame_range, ranges):
            problems.append(f"frame_range does not cover the {n} frames in {f.window}-frame windows every {f.stride}")
        else:
            paths = [frames_dir / f"{i:06d}.jpg" for i in range(n)]
            index, _ = clip_frames(ranges, spec.input.clip(f.clip), n_frames=n, fps=p.data.fps)
            expect["frames_sha256"] = fingerprint(frames_read(paths, index))
    problems += store.differences(fs.attrs, json.loads(json.dumps(expect)))
    return [Problem(key, stage, f"{path}: {what}") for what in problems]


def verify(p: params.Params, keys: list[str] | None = None, root: Path = Path(".")) -> list[Problem]:
    """Every problem of the videos `keys` (default: both tables), then what DVC's hash check finds."""
    known = [*p.videos, *p.unannotated]
    unknown = [k for k in keys or [] if k not in known]
    if unknown:
        raise BouldersegError(f"no video {', '.join(unknown)} in params.yaml; the tables list {', '.join(known)}.")
    keys = keys or known
    problems = []
    for key in keys:
        suffix = "" if key in p.videos else "-unannotated"
        n, found = _frames(key, f"frames{suffix}@{key}", root)
        problems += found
        if n is None:
            continue
        persons, features = artifacts(p, key, root)
        if key in p.videos:
            problems += _rows(key, f"labels@{key}", root / "data/labels" / f"{key}.csv", n)
        problems += _rows(key, f"persons{suffix}@{key}", persons, n)
        for family, backbone in p.features.backbones.items():
            problems += _features(p, key, family, backbone, f"features-{family}{suffix}@{key}-{backbone}",
                                  features / backbone / f"{key}.zarr", root / "data/frames" / key,
                                  None if found else n)
    for stage, changes in dvc_status(root).items():  # outputs that no longer hash to dvc.lock (changed deps or
        key = video_of(stage, known)                  # params only mean `dvc repro` has work to do)
        if key in keys or (key is None and not stage.startswith(ORDER) and set(keys) == set(known)):
            outs = [change["changed outs"] for change in changes if isinstance(change, dict) and "changed outs" in change]
            problems += [Problem(key or "", stage, f"{path} {state}: it does not match dvc.lock")
                         for out in outs for path, state in out.items()]
    return problems


def stages_to_rerun(problems: list[Problem]) -> list[str]:
    """The stages that rebuild what `problems` name, each once, in the order of DVC's own graph of the project in
    the working directory: every stage after those it depends on (`dvc repro --single-item` runs them as given)."""
    import networkx as nx
    from dvc.repo import Repo

    def rank(name: str) -> tuple[int, str]:  # among stages free to run: a video's in ORDER, then the others
        kind = name.partition("@")[0].partition("-")[0]
        return (ORDER.index(kind) if kind in ORDER else len(ORDER), name)

    wanted = {pr.stage for pr in problems}
    with Repo() as repo:  # the graph's edges point from a stage to the stages it depends on
        graph = repo.index.graph.reverse()
        order = [s.addressing for s in nx.lexicographical_topological_sort(graph, key=lambda s: rank(s.addressing))]
    return [s for s in order if s in wanted] + sorted(wanted - set(order), key=rank)
