"""Pretrained weights: pinned by sha256, fetched once, loaded as tensors only.

A file is looked for in the weights directory, else downloaded (to a temp name, checked, then
renamed). Its sha256 is checked against the pin before every load. A checkpoint that needs
pickled objects (ultralytics saves whole modules) is unpickled once, only when its hash matches
the pin, and its tensors are saved beside it; every later load is `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_output
from pipeline.errors import BouldersegError, warn

OFFLINE_SWITCH = "dvc exp run -S weights.pretrained=false"


@dataclass(frozen=True)
class WeightsFile:
    url: str
    sha256: str | None  # the published file's hash; None where none could be pinned yet

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Loaded:
    state: dict[str, Any]  # parameter name -> tensor
    provenance: dict[str, Any]  # what the feature store and parquet metadata record


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(path: Path, file: WeightsFile) -> str:
    """The file's sha256, which must equal the pin; an error naming the file and both hashes."""
    actual = sha256_of(path)
    if file.sha256 is None:
        warn(f"{path}: no pinned sha256 for {file.url}; this file's is {actual}. Pin it in the registry.")
    elif actual != file.sha256:
        raise BouldersegError(
            f"{path}: sha256 mismatch: the file has {actual}, the registry pins {file.sha256}. "
            f"The file is damaged or not the published one: delete it and rerun to download {file.url}.")
    return actual


def fetch(file: WeightsFile, weights_dir: str | Path) -> Path:
    """Path of `file` inside `weights_dir`, downloading it if absent.

    With BOULDERSEG_OFFLINE=1 nothing is downloaded. A failed download raises at once, saying
    which file is missing, where it comes from, where to put it and how to run without it.
    """
    dst = Path(weights_dir) / file.name
    if dst.is_file():
        return dst
    reason = "BOULDERSEG_OFFLINE=1 is set"
    if os.environ.get("BOULDERSEG_OFFLINE") != "1":
        import torch.hub

        try:
            with atomic_output(dst) as tmp:
                torch.hub.download_url_to_file(file.url, str(tmp), progress=True)
                check(tmp, file)
            return dst
        except BouldersegError:
            raise
        except Exception as e:  # noqa: BLE001 - every network failure is the same user problem
            reason = f"download failed: {type(e).__name__}: {str(e)[:160]}"
    raise BouldersegError(
        f"missing pretrained weights {dst} ({reason}).\n"
        f"  Download {file.url}\n"
        f"  and put it at {dst} (runtime.weights_dir in params.yaml), or run without pretrained weights:\n"
        f"  {OFFLINE_SWITCH}"
    )


def load_state(file: WeightsFile, weights_dir: str | Path, *,
               to_state: Callable[[Any], dict[str, Any]]) -> Loaded:
    """The checkpoint's parameters, via `to_state(checkpoint)`, loaded without trusting pickles."""
    import torch

    path = fetch(file, weights_dir)
    sha = check(path, file)
    provenance = {"pretrained": True, "url": file.url, "file": file.name, "sha256": sha}
    tensors = path.with_name(f"{path.name}.{sha[:12]}.tensors.pt")
    if tensors.is_file():
        return Loaded(torch.load(tensors, map_location="cpu", weights_only=True), provenance)
    try:
        return Loaded(to_state(torch.load(path, map_location="cpu", weights_only=True)), provenance)
    except pickle.UnpicklingError:
        if file.sha256 is None:
            raise BouldersegError(
                f"{path}: this checkpoint needs pickled objects, and with no pinned sha256 it is not trusted. "
                f"Pin its hash ({sha}) in the registry once you know it is the published file.") from None
    state = to_state(torch.load(path, map_location="cpu", weights_only=False))  # the pinned, published file
    with atomic_output(tensors) as tmp:
        torch.save(state, tmp)
    return Loaded(state, provenance)
