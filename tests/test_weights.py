from __future__ import annotations

import fractions

import pytest
import torch

from pipeline.errors import BouldersegError
from pipeline.weights import WeightsFile, fetch, load_state, sha256_of

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
    with pytest.raises(BouldersegError, match=f"needs pickled objects, and with no pinned sha256 it is not "
                                              f"trusted. Pin its hash \\({sha}\\)"):
        load_state(WeightsFile(URL, None), tmp_path, to_state=lambda c: c)
    assert f"no pinned sha256 for {URL}; this file's is {sha}" in capsys.readouterr().err
