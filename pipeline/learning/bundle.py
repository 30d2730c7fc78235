"""A model bundle: a head trained on every labelled video, and all it needs to segment a new one.

models/<backbone>/<head>/ holds `head.pt` (a state_dict, loaded with weights_only=True) and
`bundle.json`: the backbone and its input spec, window, stride, fps, classes, label policy,
post-processing, the head's params, the code version and the cross-validation metrics it earned.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.errors import BouldersegError
from pipeline.learning.dataset import VideoData
from pipeline.learning.heads import Head, build_head, solved
from pipeline.learning.train import HeadConfig, Loss, fit_chosen, mode_filter, save_state

CODE = ("heads.py", "train.py", "bundle.py")  # what turns features into predictions


def code_version() -> str:
    """The package version and a hash of the code that turns cached features into predictions."""
    h = hashlib.sha256()
    for name in CODE:
        h.update((Path(__file__).parent / name).read_bytes())
    return f"boulderseg {metadata.version('boulderseg')} ({h.hexdigest()[:12]})"


def save(out_dir: Path, head: Head, info: dict[str, Any]) -> None:
    """Write `head` and `info` (backbone, input spec, windows, classes, policy, params, metrics) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_state(head.state_dict(), out_dir / "head.pt")
    meta = info | {"feature_dim": int(head.mean.shape[0]), "code_version": code_version()}
    (out_dir / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load(bundle_dir: str | Path) -> tuple[Head, dict[str, Any]]:
    """The trained head in eval mode and its bundle.json, from the bundle directory alone."""
    bundle_dir = Path(bundle_dir)
    try:
        meta = json.loads((bundle_dir / "bundle.json").read_text())
        state = torch.load(bundle_dir / "head.pt", weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise BouldersegError(f"{bundle_dir / 'head.pt'}: refused: it holds Python objects, not only tensors, and "
                              "loading it could run code. A bundle is data: retrain it with `dvc repro`, or ask whoever "
                              "sent it for the bundle boulderseg wrote.") from None
    except (OSError, ValueError) as e:
        raise BouldersegError(f"{bundle_dir}: not a model bundle ({e}). Run `dvc repro` to train it (its stage is train-<family>@<backbone>-<head>).") from None
    head = build_head(meta["head"], feature_dim=meta["feature_dim"], n_classes=len(meta["classes"]),
                      options=meta["params"]["model"])
    head.load_state_dict(state)
    return head.eval(), meta


CHECKED = ("backbone", "weights", "preprocessing", "precision", "fps", "window", "stride", "dtype")  # store == bundle
OPTIONAL = ("skip_static", "pose_smoothing")  # recorded by stores and bundles only when set
HEIGHTS = "frame_heights"  # the rows of the frames the training features were computed from


def members(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """What the bundle records of each backbone whose features it reads, in the order they are concatenated: one,
    or the two of a fusion."""
    return meta["backbone"].get("members") or [meta["backbone"]]


def require_checkable(meta: dict[str, Any], bundle_dir: Path) -> None:
    """Refuse a bundle that does not record what `check_store` compares (written by an older boulderseg)."""
    missing = sorted({k for b in members(meta) for k in (*CHECKED, HEIGHTS) if k not in b})
    if missing:
        raise BouldersegError(f"{bundle_dir}/bundle.json records no {', '.join(missing)}: it was written by an older "
                              "boulderseg. Retrain it with `dvc repro`.")


def check_store(meta: dict[str, Any], attrs: dict[str, Any], *, store_path: Path, bundle_dir: Path,
                member: int = 0) -> None:
    """Refuse a feature store that was not computed the way the bundle's training features of its `member`-th
    backbone were: other weights (file and sha256), preprocessing (input spec, clip rule, pooling), precision,
    windows, dtype, skipped windows, pose smoothing, or frames written at another frames.short_side. What the
    backbone sees is its input spec applied to frames sized by frames.short_side, so a video whose source is
    smaller (its frames stayed below frames.short_side) is not refused: `predict` notes it."""
    require_checkable(meta, bundle_dir)
    b = members(meta)[member]
    expect = json.loads(json.dumps({k: b[k] for k in CHECKED}))
    differ = {k: v for k, v in expect.items() if attrs.get(k) != v}
    differ |= {k: b.get(k) for k in OPTIONAL if attrs.get(k) != b.get(k)}
    wanted = short_side(meta)
    if attrs.get("frames_short_side") != wanted:
        differ["frames_short_side"] = wanted
    if differ:
        lines = "\n".join(f"  {k}: the store has {attrs.get(k)!r}, the bundle {v!r}" for k, v in differ.items())
        raise BouldersegError(
            f"{store_path} was not computed as {bundle_dir} was trained, so its predictions would not be the model's:\n"
            f"{lines}\nRecompute it with the bundle's settings (weights file, runtime.device for the precision, "
            "frames.short_side), or use a bundle trained on such features.")


def short_side(meta: dict[str, Any]) -> int | None:
    """The frames.short_side the bundle's training frames were written with (a bundle from before the key: its
    frames.height, which sized the rows of the landscape videos it was trained on)."""
    frames = meta.get("frames") or {}
    return frames["short_side"] if "short_side" in frames else frames.get("height")


@torch.inference_mode()
def predict(head: Head, meta: dict[str, Any], features: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) class names of every frame from (W, D) window features, after the bundle's post-processing,
    and (N,) confidence: the frame's window's softmax probability of that class. `owner` (N,): each frame's window."""
    logits = head(torch.from_numpy(np.asarray(features, np.float32))[None], torch.tensor([len(features)]))[0]  # (W, C)
    pred = mode_filter(logits.argmax(-1).numpy()[owner], meta["mode_filter"])  # (N,)
    return np.asarray(meta["classes"])[pred], logits.softmax(-1).numpy()[owner, pred]


def train_bundle(videos: Sequence[VideoData], cfg: HeadConfig, out_dir: Path, *, info: dict[str, Any],
                 cv_metrics: dict[str, Any] | None, classes: Sequence[str], min_person_fraction: float, seed: int,
                 loss: Loss, select: str = "none", inner_folds: int = 3,
                 say: Callable[[str], None] | None = None) -> None:
    """Fit the head on every video (choosing its epochs on them first when `select` is nested) and write its bundle
    to `out_dir`, with the CV metrics it earned and what it chose. params.epochs: what the head was trained for
    (the chosen ones; None for a solved head), configured_epochs: the params' (which a bundle written before this
    key holds as its epochs). `say` hears what `fit_chosen` says."""
    head = fit_chosen(cfg, videos, select=select, inner_folds=inner_folds, n_classes=len(classes),
                      min_person_fraction=min_person_fraction, seed=seed, loss=loss, say=say)
    save(out_dir, head, info | {
        "head": cfg.name, "classes": list(classes), "trained_on": [v.name for v in videos],
        "params": {"epochs": None if solved(cfg.name) else head.chosen.get("epochs", cfg.epochs),
                   "configured_epochs": cfg.epochs,
                   "batch": cfg.batch, "lr": cfg.lr, "weight_decay": cfg.weight_decay, "model": cfg.model,
                   "loss": asdict(loss), "seed": seed, "min_person_fraction": min_person_fraction},
        "chosen": head.chosen, "cv_metrics": cv_metrics})
