"""A video's frames -> backbone features per window (`windows`), with decoding overlapped with compute."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from pipeline.core.device import resolve_device
from pipeline.core.errors import BouldersegError, warn
from pipeline.core.prefetch import prefetch
from pipeline.features import backbones, crop as cropping, store
from pipeline.features.backbones import InputSpec
from pipeline.features.windows import clip_frames, windows
from pipeline.media.probe import frame_paths


BATCH = {"cpu": 2, "cuda": 8}  # windows per forward pass by default (on CPU a small batch stays in the caches)
_MODELS: OrderedDict[str, torch.nn.Module] = OrderedDict()  # built models a warm process keeps (pipeline/warm/)
_KEEP_PARAMETERS = 500_000_000  # at most this many parameters stay built, least recently used dropped first


def built_model(spec: backbones.Backbone, *, pretrained: bool, weights_dir: str | Path, seed: int, pooling: str,
                device: torch.device) -> torch.nn.Module:
    """`spec.build(...)` on `device`, kept for the next call with the same weights (their file and sha256, or seed)."""
    weights = spec.provenance(pretrained=pretrained, weights_dir=weights_dir, seed=seed)
    key = json.dumps([spec.name, spec.family, weights, pooling, str(device)], sort_keys=True)
    if key not in _MODELS:
        model, _ = spec.build(pretrained=pretrained, weights_dir=weights_dir, seed=seed, pooling=pooling)
        _MODELS[key] = model.to(device, memory_format=layout(spec, device))
        while len(_MODELS) > 1 and sum(p.numel() for m in _MODELS.values() for p in m.parameters()) > _KEEP_PARAMETERS:
            _MODELS.popitem(last=False)
    _MODELS.move_to_end(key)
    return _MODELS[key]


def layout(spec: backbones.Backbone, device: torch.device) -> torch.memory_format:
    """The memory format a model runs in: its channels-last one on CPU, where it was measured; else as built."""
    return spec.memory_format if device.type == "cpu" else torch.contiguous_format


def load_frame(path: Path, spec: InputSpec) -> tuple[np.ndarray, str]:
    """JPG -> (C, H, W) float32 resized, cropped and normalised as `spec` says, and the sha256 of its bytes.

    The short side is resized to `spec.short_side` (or the frame to exactly `spec.resize`); then a centre crop
    of `spec.crop_size`, or with no crop size the whole frame, its sides cut to a multiple of 32.
    """
    image, digest, _ = _decoded(path, spec, thumbnail=False)
    return image, digest


THUMB_COLUMNS = 64  # width of the grey thumbnails the motion score compares (features.skip_static)


def _decoded(path: Path, spec: InputSpec, *, thumbnail: bool) -> tuple[np.ndarray, str, np.ndarray | None]:
    """`load_frame`'s (image, sha256), and with `thumbnail` the frame as a (rows, THUMB_COLUMNS) uint8 grey thumbnail."""
    data = path.read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BouldersegError(f"{path}: not a readable JPG. Rerun the frames stage for this video.")
    image, thumb = prepare(bgr, spec, thumbnail=thumbnail)
    return image, hashlib.sha256(data).hexdigest(), thumb


def prepare(bgr: np.ndarray, spec: InputSpec, *, thumbnail: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) uint8 BGR -> (C, H', W') float32 as `load_frame` says, and with `thumbnail` its grey thumbnail."""
    h, w = bgr.shape[:2]
    thumb = None
    if thumbnail:
        thumb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (THUMB_COLUMNS, max(1, round(h * THUMB_COLUMNS / w))),
                           interpolation=cv2.INTER_AREA)
    size, (y, x, ch, cw) = _geometry(h, w, spec)
    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    rgb = bgr[y : y + ch, x : x + cw, ::-1].astype(np.float32) / 255.0
    rgb = (rgb - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)), thumb


def _geometry(h: int, w: int, spec: InputSpec) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """How `load_frame` maps an (h, w) frame: the (columns, rows) it is resized to, then its crop (y, x, rows, cols)."""
    scale, crop = spec.short_side / min(h, w), spec.crop_size
    size = (spec.resize[1], spec.resize[0]) if spec.resize else (max(crop or 0, round(w * scale)),
                                                                 max(crop or 0, round(h * scale)))
    ch, cw = (crop, crop) if crop else (size[1] // 32 * 32, size[0] // 32 * 32)
    return size, ((size[1] - ch) // 2, (size[0] - cw) // 2, ch, cw)


def fed_boxes(boxes: np.ndarray, size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """(N, 4) boxes in pixels of (rows, columns) `size` frames -> fractions of the frame `spec` feeds, in [0, 1]."""
    (rw, rh), (y, x, ch, cw) = _geometry(*size, spec)
    scale = np.array([rw / size[1], rh / size[0]] * 2, np.float32)
    return np.clip((boxes * scale - np.array([x, y] * 2)) / np.array([cw, ch] * 2), 0, 1).astype(np.float32)


def fingerprint(digests: dict[int, str]) -> str:
    """sha256 over (index, sha256) of every frame read, in index order: what the features were computed from."""
    h = hashlib.sha256()
    for i in sorted(digests):
        h.update(f"{i}:{digests[i]}\n".encode())
    return h.hexdigest()


def frames_read(paths: list[Path], index: np.ndarray) -> dict[int, str]:
    """The sha256 of every frame the (W, T) clip `index` feeds, without decoding them."""
    return {i: hashlib.sha256(paths[i].read_bytes()).hexdigest() for i in sorted(set(index.ravel().tolist()))}


def _clip_batches(paths: list[Path], index: np.ndarray, spec: InputSpec, digests: dict[int, str], *,
                  batch_size: int, workers: int, thumbnails: bool) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield (B, C, T, H, W) batches of the (W, T) clip `index` in window order, with `thumbnails` their frames'
    (B, T, rows, THUMB_COLUMNS) grey thumbnails (else None); each frame is decoded once, its sha256 put in `digests`."""
    cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    with ThreadPoolExecutor(workers) as pool:
        for lo in range(0, len(index), batch_size):
            batch = index[lo : lo + batch_size]
            missing = sorted(set(batch.ravel().tolist()) - cache.keys())
            for i, (image, digest, thumb) in zip(missing, pool.map(
                    lambda i: _decoded(paths[i], spec, thumbnail=thumbnails), missing)):
                cache[i], digests[i] = (image, thumb), digest
            clips = np.stack([np.stack([cache[i][0] for i in ix], axis=1) for ix in batch])
            yield clips, np.stack([np.stack([cache[i][1] for i in ix]) for ix in batch]) if thumbnails else None
            if lo + batch_size < len(index):  # later clips start no earlier: drop what they cannot use
                first = int(index[lo + batch_size :, 0].min())
                for i in [i for i in cache if i < first]:
                    del cache[i]


def cut_clips(frames: Iterator[tuple[int, np.ndarray]], index: np.ndarray, crops: np.ndarray, scale: tuple[float, float],
              spec: InputSpec, *, batch_size: int, thumbnails: bool) -> Iterator[tuple[np.ndarray | list, np.ndarray | None]]:
    """`_clip_batches` for clips cut to each window's crop box (`pipeline.features.crop`): (B, C, T, H, W) batches, or
    a list of (C, T, H, W) clips where a whole-frame window sits beside square ones; thumbnails are square."""
    square = (THUMB_COLUMNS, THUMB_COLUMNS)
    for batch in cropping.cut_batches(frames, index, crops, scale, lambda im: prepare(im, spec, thumbnail=thumbnails),
                                      batch_size=batch_size):
        clips = [np.stack([image for image, _ in clip], axis=1) for clip in batch]
        thumbs = np.stack([np.stack([cv2.resize(t, square, interpolation=cv2.INTER_AREA) for _, t in clip])
                           for clip in batch]) if thumbnails else None
        yield (np.stack(clips) if len({c.shape for c in clips}) == 1 else clips), thumbs


def kept(clips: np.ndarray | list[np.ndarray], keep: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """The clips of a batch whose `keep` is set."""
    if keep.all():
        return clips
    return clips[keep] if isinstance(clips, np.ndarray) else [c for c, k in zip(clips, keep) if k]


class StaticSkip:
    """Which windows run the backbone under `features.skip_static`: a window whose clip's grey thumbnails differ
    from those of the last computed window by less than `threshold` grey levels (mean absolute difference, 0-255)
    reuses that window's features. The first window is always computed (its score is NaN: nothing to compare)."""

    def __init__(self, threshold: float) -> None:
        self.threshold, self.reference = threshold, None  # reference: (T, rows, cols) of the last computed window

    def __call__(self, thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, T, rows, cols) uint8 -> (computed (B,) bool, motion (B,) float32)."""
        computed, motion = np.ones(len(thumbs), bool), np.full(len(thumbs), np.nan, np.float32)
        for b, clip in enumerate(thumbs):
            if self.reference is not None:
                motion[b] = np.abs(clip.astype(np.int16) - self.reference).mean()
                computed[b] = motion[b] >= self.threshold
            if computed[b]:
                self.reference = clip.astype(np.int16)
        return computed, motion


def frame_size(paths: list[Path]) -> tuple[int, int]:
    """(rows, columns) of the stored JPGs (a video's frames all have one size: the frames stage wrote them)."""
    image = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE) if paths else None
    if image is None:
        raise BouldersegError(f"{paths[0] if paths else 'frames'}: no readable JPG. Rerun the frames stage for this video.")
    return int(image.shape[0]), int(image.shape[1])


def configured_short_side(frames_dir: str | Path) -> int | None:
    """The frames.short_side the frames were written with (their manifest's); None when it does not say."""
    try:
        manifest = json.loads((Path(frames_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("short_side") if isinstance(manifest, dict) else None


def store_config(spec: backbones.Backbone, *, n_frames: int, height: int, pretrained: bool, weights_dir: str | Path,
                 seed: int, pooling: str, clip: str, fps: float, window: int, stride: int, dtype: str,
                 skip_static: float | None = None, pose_smoothing: str = "none",
                 frames_short_side: int | None = None, crop: cropping.Crop | None = None) -> dict:
    """What a store made now would record as its configuration, all but the frames' fingerprint (and the hashes of
    the boxes it read, which `extract_features` adds)."""
    fed = spec.input.clip(clip)
    return {
        "backbone": spec.name, "family": spec.family, "level": spec.level, "feature_dim": spec.feature_dim(pooling),
        "weights": spec.provenance(pretrained=pretrained, weights_dir=weights_dir, seed=seed),
        "preprocessing": spec.input.as_dict() | {
            "clip": {"rule": clip, "frames": fed.frames, "step": fed.step(fps), "seconds": fed.seconds(fps),
                     "centred": "on the window's centre"},
            "interpolation": "INTER_AREA", "frame_pooling": pooling if spec.level == "frame" else None}
        | ({"crop": crop.as_dict()} if crop and crop.climber else {}),
        "fps": fps, "window": window, "stride": stride, "dtype": dtype, "n_frames": n_frames, "frame_height": height,
        "skip_static": skip_static, "pose_smoothing": smoothed(spec, pose_smoothing),
        "frames_short_side": frames_short_side,
    }


def smoothed(spec: backbones.Backbone, pose_smoothing: str) -> str | None:
    """The landmark smoothing `spec`'s features get: None for a backbone without landmarks or with "none"."""
    return pose_smoothing if spec.landmarks is not None and pose_smoothing != "none" else None


def extract_features(
    frames_dir: str | Path,
    out_zarr: str | Path,
    *,
    # what to run
    backbone: str = "x3d_xs",
    family: str | None = None,
    pretrained: bool = True,
    weights_dir: str | Path = "weights",
    seed: int = 0,
    pooling: str = "stack",
    clip: str = "paper",
    persons: str | Path | None = None,
    # how to window the frames and store the features
    fps: float = 25.0,
    window: int = 16,
    stride: int = 8,
    dtype: str = "float16",
    skip_static: float | None = None,
    pose_smoothing: str = "none",
    crop: cropping.Crop | None = None,
    # how to run it
    batch_size: int | None = None,
    device: str = "auto",
    workers: int = 2,
) -> tuple[store.FeatureSet, bool]:
    """Features of every window of a frames directory in a Zarr store, and whether an existing store was reused.

    A store already at `out_zarr` is reused only when everything it records as its configuration
    (backbone, weights, preprocessing, windows, dtype, the frames it read) is what this call would
    produce; otherwise it is rebuilt. Features are (n_windows, D) in `dtype`, frame_range (n_windows, 2), and
    clip_frames (n_windows, T): the frames each window fed (`clip`: the paper's or the weights' own sampling).
    With `skip_static` (a threshold, see `StaticSkip`), windows that barely move reuse the last computed
    window's features; the store then records computed (n_windows,) bool and motion (n_windows,) float32.
    With `pose_smoothing` (one_euro | savgol), a pose backbone's landmark tracks are smoothed over the video's fed
    frames before its windows are pooled (`pose_windows`); other backbones ignore it.
    `persons`: the persons stage's parquet, for a backbone that takes the tracked person's box (`needs_boxes`); the
    store then records a hash of the boxes (`boxes`). With `crop` rule climber, each window's clip is cut around the
    parquet's climber track from the source video (`pipeline.features.crop`); the store records the rule, the boxes
    (n_windows, 4) and their hash (`crop_track`). On CUDA: bfloat16 autocast. `batch_size` None: the device's (`BATCH`).
    """
    spec = backbones.get(backbone, family)
    paths = frame_paths(frames_dir)
    ranges = windows(len(paths), window=window, stride=stride)
    index, repeated = clip_frames(ranges, spec.input.clip(clip), n_frames=len(paths), fps=fps)
    size = frame_size(paths)
    config = store_config(spec, n_frames=len(paths), height=size[0], pretrained=pretrained, weights_dir=weights_dir,
                          seed=seed, pooling=pooling, clip=clip, fps=fps, window=window, stride=stride, dtype=dtype,
                          skip_static=skip_static, pose_smoothing=pose_smoothing,
                          frames_short_side=configured_short_side(frames_dir), crop=crop)
    if config["pose_smoothing"] and skip_static is not None:
        raise BouldersegError(f"{frames_dir}: features.pose_smoothing ({pose_smoothing}) needs every fed frame's "
                              f"landmarks, so {backbone} cannot also skip static windows: set features.skip_static "
                              "to null or features.pose_smoothing to none in params.yaml.")
    if (spec.needs_boxes or crop and crop.climber) and persons is None:
        raise BouldersegError(f"{backbone}{' cut around the climber' if crop and crop.climber else ''} needs the "
                              f"tracked person's box in every frame: pass the persons stage's parquet (`python -m "
                              f"stages.features ... --persons data/persons/VIDEO.parquet`, as dvc.yaml's stages do).")
    crops = None  # (n_windows, 4) crop boxes in stored-frame pixels, with crop climber
    if crop and crop.climber:
        if config["pose_smoothing"]:
            raise BouldersegError(f"{frames_dir}: features.pose_smoothing ({pose_smoothing}) smooths each landmark over "
                                  f"the whole frame, but features.crop climber feeds {backbone} one crop per window: "
                                  "set one of them to none in params.yaml.")
        track = cropping.track_boxes(persons, len(paths))
        crops = cropping.window_boxes(track, index, size, margin=crop.margin)
        config["crop_track"] = {"boxes_sha256": hashlib.sha256(crops.tobytes()).hexdigest()}  # what the cut read
    boxes = None  # (n_windows, T, 4) fed-frame fractions, for backbones that take the tracked person's box
    if spec.needs_boxes:
        pixels = cropping.person_boxes(persons, len(paths)) if crops is None else track  # the crop's own, inside it
        config["boxes"] = {"column": "near_box" if crops is None else "near_box, the crop's track",
                           "sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
        boxes = fed_boxes(pixels, size, spec.input)[index] if crops is None else np.stack([
            fed_boxes(pixels[ix] - np.r_[c[:2], c[:2]], (c[3] - c[1], c[2] - c[0]), spec.input)
            for ix, c in zip(index, crops)])
    if Path(out_zarr).exists():
        reused = store.reuse(out_zarr, config | {"frames_sha256": fingerprint(frames_read(paths, index))})
        if reused is not None:
            return reused, True
    if repeated:
        fed = spec.input.clip(clip)
        warn(f"{frames_dir}: {len(paths)} frames, shorter than {backbone}'s clip ({fed.frames} frames {fed.step(fps)} "
             f"apart): its last frame is fed {repeated} more time(s) (recorded in the store)")
    scale = upscale(spec, frames_dir, short=min(size))
    dev = resolve_device(device)
    batch_size = batch_size or BATCH.get(dev.type, BATCH["cpu"])
    model = built_model(spec, pretrained=pretrained, weights_dir=weights_dir, seed=seed, pooling=pooling, device=dev)
    out = np.empty((len(ranges), spec.feature_dim(pooling)), np.float32)
    digests, run = {}, {}  # frame -> sha256 of the frames read; how it ran
    if config["pose_smoothing"]:  # every window pooled from smoothed per-frame vectors: no clip batch left to run
        out, batches = pose_windows(model, paths, index, spec, digests, smoothing=pose_smoothing, pooling=pooling,
                                    fps=fps, batch_size=batch_size * index.shape[1], workers=workers, dev=dev), []
    elif crops is not None:
        digests.update(frames_read(paths, index))  # the JPGs stand in for the source they were written from
        run["crop_persons_sha256"] = hashlib.sha256(Path(persons).read_bytes()).hexdigest()
        frames, source_scale, run["crop_source"] = cropping.crop_frames(frames_dir, index, short_side=crop.short_side,
                                                                        size=size)
        batches = prefetch(cut_clips(frames, index, crops, source_scale, spec.input, batch_size=batch_size,
                                     thumbnails=skip_static is not None))
    else:
        batches = prefetch(_clip_batches(paths, index, spec.input, digests, batch_size=batch_size, workers=workers,
                                         thumbnails=skip_static is not None))
    skip = StaticSkip(skip_static) if skip_static is not None else None
    computed, motion = np.ones(len(ranges), bool), np.full(len(ranges), np.nan, np.float32)
    row, last = 0, -1  # last: the row of the last computed window
    with torch.inference_mode(), tqdm(total=len(ranges), desc=f"{backbone} {Path(frames_dir).name}",
                                      unit="window", disable=None) as bar:
        for clips, thumbs in batches:
            n = len(clips)
            if skip is not None:
                computed[row : row + n], motion[row : row + n] = skip(thumbs)
            keep = computed[row : row + n]
            fed = None if boxes is None else boxes[row : row + n][keep]  # (B', T, 4)
            y = forward(model, kept(clips, keep), dev, fed) if keep.any() else None  # (B', D)
            rank = np.cumsum(keep) - 1  # window b's row in y, when computed
            for b in range(n):
                last = row + b if keep[b] else last
                out[row + b] = y[rank[b]] if keep[b] else out[last]
            row += n
            bar.update(n)
    config["frames_sha256"] = fingerprint(digests)
    run |= {"device": dev.type, "precision": "bfloat16-autocast" if dev.type == "cuda" else "float32",
           "repeated_frames": repeated, "input_scale": scale}
    if layout(spec, dev) != torch.contiguous_format:
        run["memory_format"] = str(layout(spec, dev)).removeprefix("torch.")
    extra = {"computed": computed, "motion": motion} if skip is not None else {}
    extra |= {"crop_boxes": crops} if crops is not None else {}
    return store.write(out_zarr, out.astype(dtype), ranges, config | run, clip_frames=index, **extra), False


def pose_windows(model: backbones.PoolFrames, paths: list[Path], index: np.ndarray, spec: backbones.Backbone,
                 digests: dict[int, str], *, smoothing: str, pooling: str, fps: float, batch_size: int, workers: int,
                 dev: torch.device) -> np.ndarray:
    """(W, T) clip `index` -> (W, D) float32 features of a pose backbone: the per-frame vector of every fed frame
    once (`model`'s inner per-frame model, `batch_size` frames a pass), its landmark tracks smoothed over the video
    (`spec.landmarks.smooth`; "none": as they came), then stacked or averaged per window as `PoolFrames` does."""
    fed = np.unique(index)
    per_frame, size = np.empty((len(fed), spec.dim), np.float32), (0, 0)
    with torch.inference_mode(), tqdm(total=len(fed), desc=f"{spec.name} frames", unit="frame", disable=None) as bar:
        row = 0
        for clips, _ in prefetch(_clip_batches(paths, fed[:, None], spec.input, digests, batch_size=batch_size,
                                               workers=workers, thumbnails=False)):  # (B, C, 1, H, W)
            per_frame[row : row + len(clips)] = forward(model.model, clips, dev)[:, 0]
            row, size = row + len(clips), clips.shape[-2:]
            bar.update(len(clips))
    tracks = torch.from_numpy(spec.landmarks.smooth(fed, per_frame, method=smoothing, fps=fps, size=size))
    windows = tracks[torch.from_numpy(np.searchsorted(fed, index))]  # (W, T, d)
    return (windows.flatten(1) if pooling == "stack" else windows.mean(1)).numpy()


def forward(model: torch.nn.Module, clips: np.ndarray | list[np.ndarray], dev: torch.device,
            boxes: np.ndarray | None = None) -> np.ndarray:
    """(B, C, T, H, W) float32 clips (and (B, T, 4) boxes, for the models that take them) -> (B, D) float32
    features; on CUDA pinned, copied without blocking, bfloat16. A list of (C, T, H, W) clips of several sizes (a
    cropped window beside a whole-frame one) runs one pass per size."""
    if isinstance(clips, list):
        out: list = [None] * len(clips)
        for shape in {c.shape for c in clips}:
            same = [i for i, c in enumerate(clips) if c.shape == shape]
            y = forward(model, np.stack([clips[i] for i in same]), dev, None if boxes is None else boxes[same])
            for i, row in zip(same, y):
                out[i] = row
        return np.stack(out)
    x = torch.from_numpy(clips)
    if dev.type == "cuda":
        x = x.pin_memory().to(dev, non_blocking=True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        return (model(x) if boxes is None else model(x, torch.from_numpy(boxes).to(dev))).float().cpu().numpy()


_UPSCALE_WARNED: set[tuple[str, str]] = set()  # (backbone, frames' parent): one warning per stage, per process


def upscale(spec: backbones.Backbone, frames_dir: str | Path, *, short: int) -> float:
    """How much the model's resize scales the stored frames' `short` side (> 1: upscaled); warns once per stage."""
    scale = round(spec.input.needs_rows / short, 4)
    key = (spec.name, str(Path(frames_dir).parent))
    if scale > 1 and key not in _UPSCALE_WARNED:
        _UPSCALE_WARNED.add(key)
        warn(f"{spec.name} resizes frames to a short side of {spec.input.needs_rows}, but the stored frames have "
             f"{short}: they are upscaled {scale:.2f}x. Set frames.short_side to {spec.input.needs_rows} or more to feed "
             "it what it was trained on (frames never have more rows than their source).")
    return scale
