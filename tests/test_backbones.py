from __future__ import annotations

import pytest
import torch

from pipeline import backbones
from pipeline.errors import BouldersegError
from pipeline.weights import sha256_of


@pytest.mark.parametrize("name", sorted(backbones.REGISTRY))
def test_every_backbone_maps_its_input_spec_to_feature_dim(name):
    bb = backbones.get(name)
    model, provenance = bb.build(pretrained=False, weights_dir="unused")
    assert provenance == {"pretrained": False, "random_init_seed": 0}
    s = bb.input
    x = torch.randn(2, 3, s.num_frames, s.crop_size, s.crop_size)  # (B, C, T, H, W)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (2, bb.feature_dim)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", sorted(backbones.REGISTRY))
def test_random_init_is_seeded_so_all_videos_share_one_network(name):
    bb = backbones.get(name)
    a, b = (bb.build(pretrained=False, weights_dir="unused", seed=3)[0] for _ in range(2))
    c = bb.build(pretrained=False, weights_dir="unused", seed=4)[0]
    wa, wb, wc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.parametrize("name", sorted(backbones.REGISTRY))
def test_pretrained_checkpoint_in_the_upstream_format_loads(name, tmp_path, capsys):
    from pytorchvideo.models.hub import x3d

    upstream = getattr(x3d, name)(pretrained=False)  # the layout the real .pyth file has
    bb = backbones.get(name)
    path = tmp_path / bb.weights.name
    torch.save({"model_state": upstream.state_dict()}, path)
    model, provenance = bb.build(pretrained=True, weights_dir=tmp_path)
    key = "blocks.0.conv.conv_t.weight"
    assert torch.equal(model.state_dict()[f"model.{key}"], upstream.state_dict()[key])
    assert provenance == {"pretrained": True, "url": bb.weights.url, "file": path.name, "sha256": sha256_of(path)}
    if bb.weights.sha256 is None:  # not pinned yet: the load says what to pin
        assert f"this file's is {sha256_of(path)}. Pin it in the registry." in capsys.readouterr().err


def test_missing_checkpoint_names_file_url_and_offline_switch(tmp_path):
    with pytest.raises(BouldersegError) as e:
        backbones.get("x3d_xs").build(pretrained=True, weights_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "X3D_XS.pyth") in msg
    assert "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth" in msg
    assert "weights.pretrained=false" in msg


def test_unknown_backbone_lists_known_ones():
    with pytest.raises(BouldersegError, match="unknown backbone 'c3d'.*Known: x3d_xs"):
        backbones.get("c3d")
