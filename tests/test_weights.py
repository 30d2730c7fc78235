from __future__ import annotations

import argparse
import fractions
import os
from pathlib import Path

import pytest
import torch

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import WeightsFile, fetch, load_state, sha256_of

URL = "https://example.org/models/net.pth"


def test_a_file_with_the_wrong_hash_is_refused_naming_both_hashes(tmp_path):
    path = tmp_path / "net.pth"
    torch.save({"w": torch.ones(2)}, path)
    pin = "0" * 64
    with pytest.raises(BouldersegError) as e:
        load_state(WeightsFile(URL, pin), tmp_path, to_state=lambda c: c)
    assert str(e.value) == (
        f"{path}: sha256 mismatch: the file has {sha256_of(path)}, the registry pins {pin}. "
        f"The file is damaged or not the published one: delete it and rerun to download {URL}.")


def test_a_downloaded_file_is_checked_before_it_is_kept(tmp_path, monkeypatch):
    def download(url, dst, progress=True):
        torch.save({"w": torch.zeros(1)}, dst)

    monkeypatch.delenv("BOULDERSEG_OFFLINE")
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    with pytest.raises(BouldersegError, match="sha256 mismatch: the file has [0-9a-f]{64}, the registry pins 1{64}"):
        fetch(WeightsFile(URL, "1" * 64), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_tensor_checkpoint_loads_with_weights_only(tmp_path):
    torch.save({"model_state": {"w": torch.arange(3.0)}}, tmp_path / "net.pth")
    file = WeightsFile(URL, sha256_of(tmp_path / "net.pth"))
    loaded = load_state(file, tmp_path, to_state=lambda c: c["model_state"])
    assert torch.equal(loaded.state["w"], torch.arange(3.0))
    assert loaded.provenance == {"pretrained": True, "url": URL, "file": "net.pth", "sha256": file.sha256}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.pth"]  # nothing to convert


def test_unpinned_pickled_checkpoint_is_not_trusted(tmp_path, capsys):
    torch.save({"model": fractions.Fraction(1, 3)}, tmp_path / "net.pth")  # needs a pickled class
    sha = sha256_of(tmp_path / "net.pth")
    with pytest.raises(BouldersegError, match=f"needs pickled objects, which can run code when loaded, and no sha256 "
                                              f"is pinned; it was not loaded. Pin its full sha256 \\({sha}\\)"):
        load_state(WeightsFile(URL, None), tmp_path, to_state=lambda c: c)
    assert f"no pinned sha256 for {URL}; this file's is {sha}" in capsys.readouterr().err



class Planted:
    """Unpickling it creates `marker`: what a forged checkpoint would do, harmlessly."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def named_by_its_prefix(tmp_path: Path, checkpoint: object) -> WeightsFile:
    """`checkpoint` saved as torch hub names its files, `net-<first 8 hex digits of its sha256>.pth`."""
    torch.save(checkpoint, tmp_path / "net.pth")
    sha = sha256_of(tmp_path / "net.pth")
    (tmp_path / "net.pth").rename(tmp_path / f"net-{sha[:8]}.pth")
    return WeightsFile(f"https://example.org/models/net-{sha[:8]}.pth", None)


def test_a_name_prefix_never_licenses_unpickling(tmp_path):
    marker, weights = tmp_path / "code-ran", tmp_path / "weights"
    weights.mkdir()
    file = named_by_its_prefix(weights, {"model": Planted(marker)})
    path = weights / file.name
    with pytest.raises(BouldersegError) as e:
        load_state(file, weights, to_state=lambda c: c)
    assert str(e.value) == (
        f"{path}: this checkpoint needs pickled objects, which can run code when loaded, and only its name's sha256 "
        f"prefix {file.hash_prefix} pins it: 32 bits, cheap to forge; it was not loaded. Pin its full sha256 "
        f"({sha256_of(path)}) in the registry once you know it is the published file.")
    assert not marker.exists()
    assert [p.name for p in weights.iterdir()] == [file.name]  # no tensors written from it


def test_a_pickled_checkpoint_loads_only_with_its_full_sha256_pinned(tmp_path):
    file = named_by_its_prefix(tmp_path, {"args": argparse.Namespace(lr=0.1), "model": {"w": torch.arange(3.0)}})
    with pytest.raises(BouldersegError, match=f"only its name's sha256 prefix {file.hash_prefix} pins it"):
        load_state(file, tmp_path, to_state=lambda c: c["model"])
    pinned = WeightsFile(file.url, sha256_of(tmp_path / file.name))
    for _ in range(2):  # unpickled once, then its tensors are loaded with weights_only=True
        loaded = load_state(pinned, tmp_path, to_state=lambda c: c["model"])
        assert torch.equal(loaded.state["w"], torch.arange(3.0)) and loaded.provenance["sha256"] == pinned.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [file.name, f"{file.name}.{pinned.sha256[:12]}.tensors.pt"]


def test_a_tensor_checkpoint_pinned_by_its_name_prefix_loads_and_a_wrong_prefix_is_refused(tmp_path):
    file = named_by_its_prefix(tmp_path, {"w": torch.ones(2)})
    assert torch.equal(load_state(file, tmp_path, to_state=lambda c: c).state["w"], torch.ones(2))
    forged = tmp_path / file.name
    torch.save({"w": torch.zeros(2)}, forged)
    with pytest.raises(BouldersegError, match=f"sha256 mismatch: the file has {sha256_of(forged)}, the registry "
                                              f"pins {file.hash_prefix}\\."):
        load_state(file, tmp_path, to_state=lambda c: c)


def test_an_unpinned_file_is_checked_again_after_its_warning(tmp_path, capsys):
    torch.save({"w": torch.ones(2)}, tmp_path / "net.pth")
    for _ in range(2):
        assert torch.equal(load_state(WeightsFile(URL, None), tmp_path, to_state=lambda c: c).state["w"], torch.ones(2))
    assert capsys.readouterr().err.count("no pinned sha256") == 1
