"""The registry: every backbone builds offline, extracts its declared features, and loads its upstream weights."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from personsio import persons_parquet

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import Checkpoint, WeightsFile, sha256_of
from pipeline.features import backbones, store
from pipeline.features.extract import built_model, extract_features
from pipeline.features.windows import clip_frames, windows

REGISTRY = backbones.load_all()
BIG = {"vjepa2_l", "vivit"}  # over 5 s each on 2 CPU cores
# A shorter clip in the extraction test, at the registered frame size: V-JEPA 2's rotary positions take any number
# of tubelets (2 frames each), and its 64 frames are minutes on 2 cores. (ViViT's learned positions take its 32 alone.)
TEST_FRAMES = {"vjepa2_l": 4}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in sorted(REGISTRY)]


@pytest.fixture(scope="module")
def tiny_frames(tmp_path_factory, bikes):
    """20 frames of real footage, 68 rows high."""
    from pipeline.media.frames import extract_frames

    out = tmp_path_factory.mktemp("tiny") / "frames"
    extract_frames(bikes, out, fps=2, short_side=68)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_every_backbone_extracts_its_declared_features_offline(name, tiny_frames, tmp_path, monkeypatch):
    bb = REGISTRY[name]
    if name in TEST_FRAMES:
        clip = dataclasses.replace(bb.input.upstream, frames=TEST_FRAMES[name])
        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(bb, input=dataclasses.replace(bb.input, upstream=clip)))
    window = 20 if name in BIG else 10  # one clip for the big ones: a ViT-L forward is minutes on 2 cores
    persons = persons_parquet(tmp_path / "p.parquet", {0: [10, 10, 60, 60], 19: None}, 20) if bb.needs_boxes else None
    fs, reused = extract_features(tiny_frames, tmp_path / "v.zarr", backbone=name, family=bb.family, persons=persons,
                                  pretrained=False, fps=2, window=window, stride=window, batch_size=2, device="cpu")
    assert not reused and fs.features.shape == (20 // window, bb.feature_dim("stack"))
    assert fs.features.dtype == np.float16 and np.isfinite(fs.features).all()
    assert fs.frame_range.tolist() == windows(20, window=window, stride=window).tolist()
    assert store.read(tmp_path / "v.zarr").attrs["family"] == bb.family


@pytest.mark.parametrize("name", sorted(n for n, bb in REGISTRY.items() if bb.channels_last))
def test_channels_last_weights_compute_what_the_built_layout_does(name):
    bb = REGISTRY[name]
    built, _ = bb.build(pretrained=False, weights_dir="unused", pooling="mean")
    fast = built_model(bb, pretrained=False, weights_dir="unused", seed=0, pooling="mean", device=torch.device("cpu"))
    weights = [p for p in fast.parameters() if p.dim() >= 4]
    assert weights and all(p.is_contiguous(memory_format=bb.memory_format) for p in weights)
    side = bb.input.crop_size or bb.input.short_side  # the pooling heads need the model's input size
    x = torch.rand(1, 3, bb.input.clip("paper").frames, side, side)  # (B, C, T, H, W)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), built(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_every_backbone_is_frozen_and_its_parameter_count_is_right(name):
    bb = REGISTRY[name]
    model, _ = bb.build(pretrained=False, weights_dir="unused")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == bb.n_params


@pytest.mark.parametrize("name", [n for n in ("dinov2_vits14", "yolo_pose") if n in REGISTRY])
def test_frame_level_features_stack_in_time_or_average(name):
    bb = REGISTRY[name]
    t = bb.input.upstream.frames
    x = torch.rand(2, 3, t, 224, 224)  # (B, C, T, H, W)
    stacked, _ = bb.build(pretrained=False, weights_dir="unused", pooling="stack")
    mean, _ = bb.build(pretrained=False, weights_dir="unused", pooling="mean")
    with torch.inference_mode():
        a, b = stacked(x), mean(x)
    assert a.shape == (2, bb.dim * t) and b.shape == (2, bb.dim) == (2, bb.feature_dim("mean"))
    torch.testing.assert_close(a.view(2, t, bb.dim).mean(1), b)


@pytest.mark.parametrize("name", ["x3d_xs", "r2plus1d_18", "dinov2_vits14", "yolo_pose"])
def test_random_init_is_seeded_so_all_videos_share_one_network(name):
    bb = REGISTRY[name]
    a, b = (bb.build(pretrained=False, weights_dir="unused", seed=3)[0] for _ in range(2))
    c = bb.build(pretrained=False, weights_dir="unused", seed=4)[0]
    wa, wb, wc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def unpinned(bb: backbones.Backbone, sha256: str | None = None) -> backbones.Backbone:
    """`bb` with its weights file under a name that carries no hash (or pinned to `sha256`), for local files."""
    file = bb.weights.file
    plain = WeightsFile(file.url.rsplit("/", 1)[0] + "/local.pth", sha256=sha256, folder=file.folder)
    return dataclasses.replace(bb, weights=Checkpoint(plain, bb.weights.to_state))


def loads(bb: backbones.Backbone, weights_dir, key: str, expected: torch.Tensor) -> dict:
    """Build `bb` with its pretrained weights; its parameter `key` must be `expected`; returns the provenance."""
    model, provenance = bb.build(pretrained=True, weights_dir=weights_dir)
    assert torch.equal(model.state_dict()[key], expected)
    return provenance


def test_pytorchvideo_checkpoint_in_the_zoo_format_loads(tmp_path, capsys):
    from pytorchvideo.models.hub import x3d

    upstream = x3d.x3d_xs(pretrained=False).state_dict()  # the layout the real .pyth file has
    bb = REGISTRY["x3d_xs"]
    path = tmp_path / bb.weights.file.name
    torch.save({"model_state": upstream}, path)
    provenance = loads(bb, tmp_path, "model.blocks.0.conv.conv_t.weight", upstream["blocks.0.conv.conv_t.weight"])
    assert provenance == {"pretrained": True, "url": bb.weights.file.url, "file": path.name, "sha256": sha256_of(path)}
    assert f"this file's is {sha256_of(path)}. Pin it in the registry." in capsys.readouterr().err


def test_torchvision_file_is_pinned_by_the_hash_in_its_name_and_its_state_dict_loads(tmp_path):
    from torchvision.models import video

    upstream = video.r2plus1d_18(weights=None).state_dict()  # with its classifier, as published
    bb = REGISTRY["r2plus1d_18"]
    torch.save(upstream, tmp_path / bb.weights.file.name)
    with pytest.raises(BouldersegError, match=r"r2plus1d_18-91a641e6\.pth: sha256 mismatch: the file has [0-9a-f]{64}, "
                                              r"the registry pins 91a641e6\."):
        bb.build(pretrained=True, weights_dir=tmp_path)
    torch.save(upstream, tmp_path / "local.pth")
    loads(unpinned(bb), tmp_path, "stem.0.weight", upstream["stem.0.weight"])


def test_transformers_safetensors_file_loads_into_the_wrapped_model(tmp_path):
    from safetensors.torch import save_file

    bb = REGISTRY["dinov2_vits14"]
    upstream = bb.make().model.state_dict()  # a Dinov2Model's own keys, as the repository stores them
    folder = tmp_path / "huggingface" / "facebook" / "dinov2-small"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in upstream.items()}, folder / "model.safetensors")
    provenance = loads(bb, tmp_path, "model.model.embeddings.cls_token", upstream["embeddings.cls_token"])
    assert provenance["file"] == "model.safetensors" and provenance["sha256"] == sha256_of(folder / "model.safetensors")


def test_ultralytics_pose_checkpoint_needs_a_pin_then_loads(tmp_path):
    from ultralytics import YOLO

    bb = REGISTRY["yolo_pose"]
    net = YOLO("yolo11n-pose.yaml").model
    torch.save({"model": net}, tmp_path / "local.pth")  # ultralytics pickles the whole module
    with pytest.raises(BouldersegError, match="needs pickled objects, which can run code when loaded, and no sha256 "
                                              "is pinned; it was not loaded"):
        unpinned(bb).build(pretrained=True, weights_dir=tmp_path)
    pinned = unpinned(bb, sha256_of(tmp_path / "local.pth"))
    loads(pinned, tmp_path, "model.model.model.0.conv.weight", net.state_dict()["model.0.conv.weight"])
    assert [p.name for p in tmp_path.iterdir()] == ["local.pth"]  # nothing beside it that a later load would trust


def howto100m_checkpoint() -> dict[str, torch.Tensor]:
    """A state dict with the key names and shapes of the published s3d_howto100m.pth, written from the layout of
    antoine77340/S3D_HowTo100M's s3dg.py (STConv3D: conv1/bn1, and conv2/bn2 when separable; InceptionBlock:
    conv_b0, conv_b1_a/b, conv_b2_a/b, conv_b3_b, gating_b0-3; then fc and the text module), not from our module."""
    g = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"{prefix}.{name}"] = torch.rand(c, generator=g) + 0.5
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    def conv(prefix: str, cin: int, cout: int, kernel: tuple[int, int, int], separable: bool = False) -> None:
        first = (1, *kernel[1:]) if separable else kernel
        state[f"{prefix}.conv1.weight"] = torch.randn(cout, cin, *first, generator=g)
        bn(f"{prefix}.bn1", cout)
        if separable:
            state[f"{prefix}.conv2.weight"] = torch.randn(cout, cout, kernel[0], 1, 1, generator=g)
            bn(f"{prefix}.bn2", cout)

    def gating(prefix: str, c: int) -> None:
        state[f"{prefix}.fc.weight"], state[f"{prefix}.fc.bias"] = torch.randn(c, c, generator=g), torch.randn(c, generator=g)

    def inception(prefix: str, cin: int, o0: int, o1a: int, o1b: int, o2a: int, o2b: int, o3: int) -> int:
        conv(f"{prefix}.conv_b0", cin, o0, (1, 1, 1))
        conv(f"{prefix}.conv_b1_a", cin, o1a, (1, 1, 1))
        conv(f"{prefix}.conv_b1_b", o1a, o1b, (3, 3, 3), separable=True)
        conv(f"{prefix}.conv_b2_a", cin, o2a, (1, 1, 1))
        conv(f"{prefix}.conv_b2_b", o2a, o2b, (3, 3, 3), separable=True)
        conv(f"{prefix}.conv_b3_b", cin, o3, (1, 1, 1))
        for b, c in enumerate((o0, o1b, o2b, o3)):
            gating(f"{prefix}.gating_b{b}", c)
        return o0 + o1b + o2b + o3

    conv("conv1", 24, 64, (2, 4, 4))  # space to depth: 3 x 2 x 2 x 2 input channels
    conv("conv_2b", 64, 64, (1, 1, 1))
    conv("conv_2c", 64, 192, (3, 3, 3), separable=True)
    gating("gating", 192)
    c = 192
    for name, sizes in (("mixed_3b", (64, 96, 128, 16, 32, 32)), ("mixed_3c", (128, 128, 192, 32, 96, 64)),
                        ("mixed_4b", (192, 96, 208, 16, 48, 64)), ("mixed_4c", (160, 112, 224, 24, 64, 64)),
                        ("mixed_4d", (128, 128, 256, 24, 64, 64)), ("mixed_4e", (112, 144, 288, 32, 64, 64)),
                        ("mixed_4f", (256, 160, 320, 32, 128, 128)), ("mixed_5b", (256, 160, 320, 32, 128, 128)),
                        ("mixed_5c", (384, 192, 384, 48, 128, 128))):
        c = inception(name, c, *sizes)
    state["fc.weight"], state["fc.bias"] = torch.randn(512, c, generator=g), torch.randn(512, generator=g)
    state["text_module.word_embd.weight"] = torch.randn(10, 300, generator=g)  # 66,250 words upstream; dropped
    state["text_module.fc1.weight"], state["text_module.fc2.weight"] = torch.randn(2048, 300), torch.randn(512, 2048)
    return state


def test_s3dg_checkpoint_in_the_howto100m_layout_loads_its_video_tower(tmp_path):
    bb = REGISTRY["s3d_h"]
    upstream = howto100m_checkpoint()
    torch.save(upstream, tmp_path / bb.weights.file.name)
    model, _ = bb.build(pretrained=True, weights_dir=tmp_path)  # strict: every parameter of ours comes from the file
    ours = model.state_dict()
    tower = {k: v for k, v in upstream.items() if not k.startswith(("fc.", "text_module."))}
    assert set(ours) == set(tower)
    assert all(torch.equal(ours[k], v) for k, v in tower.items())


def test_pixels_has_nothing_to_load():
    model, provenance = REGISTRY["pixels"].build(pretrained=True, weights_dir="unused")
    assert provenance == {"pretrained": False, "learned_parameters": False} and not list(model.parameters())


def test_missing_checkpoint_names_file_url_and_the_profile_that_needs_none(tmp_path):
    with pytest.raises(BouldersegError) as e:
        REGISTRY["dinov2_vits14"].build(pretrained=True, weights_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "huggingface" / "facebook" / "dinov2-small" / "model.safetensors") in msg
    assert "https://huggingface.co/facebook/dinov2-small/resolve/main/model.safetensors" in msg
    assert "`boulderseg profile default` (no download)" in msg and "`boulderseg profile smoke`" in msg


def test_unknown_backbone_or_family_mismatch_says_what_to_do():
    with pytest.raises(BouldersegError, match="unknown backbone 'c3d'. Known: blazepose, clip_vit_b32, dinov2_vits14"):
        backbones.get("c3d")
    with pytest.raises(BouldersegError, match="backbone 'x3d_xs' is in the pytorchvideo family, not transformers: list "
                                              "it under features.backbones.pytorchvideo"):
        backbones.get("x3d_xs", "transformers")


@given(name=st.sampled_from(sorted(REGISTRY)), rule=st.sampled_from(["paper", "upstream"]),
       fps=st.sampled_from([10, 12.5, 15, 24, 25, 29.97, 30, 50, 60]), window=st.integers(1, 64),
       stride=st.integers(1, 64), extra=st.integers(0, 300))
@settings(max_examples=300, deadline=None)
def test_no_frame_is_fed_twice_within_a_clip(name, rule, fps, window, stride, extra):
    clip = REGISTRY[name].input.clip(rule)
    n = (clip.frames - 1) * clip.step(fps) + 1 + extra  # a video at least as long as the clip
    ranges = windows(n, window=window, stride=stride)
    index, repeated = clip_frames(ranges, clip, n_frames=n, fps=fps)
    assert index.shape == (len(ranges), clip.frames) and repeated == 0
    assert (index >= 0).all() and (index < n).all()
    assert (np.diff(index, axis=1) == clip.step(fps)).all()  # distinct, evenly spaced, in time order
    centres = (ranges[:, 0] + ranges[:, 1] - 1) / 2
    inside = (index[:, 0] > 0) & (index[:, -1] < n - 1)  # not shifted at the video's ends: centred on its window
    assert (np.abs(index.mean(1) - centres)[inside] <= 0.5).all()


# vivit, the other 32-frame model: its model takes 32 frames in test_every_backbone_extracts_its_declared_features_
# offline, and that no frame of a clip repeats is the registry-wide property above (a run here cost 34 s of CI)
@pytest.mark.parametrize("name", ["slowfast_r50"])
def test_the_32_frame_models_get_32_distinct_consecutive_frames_under_the_papers_rule(name, bikes_frames, tmp_path):
    bb = REGISTRY[name]
    fs, _ = extract_features(bikes_frames, tmp_path / "v.zarr", backbone=name, family=bb.family, pretrained=False,
                             fps=25, window=16, stride=48, batch_size=1, device="cpu", clip="paper")
    clips = zarr.open_group(str(tmp_path / "v.zarr"), mode="r")["clip_frames"][:]
    assert clips.shape == (len(fs.frame_range), 32)
    assert all(row.tolist() == list(range(row[0], row[0] + 32)) for row in clips)
    assert fs.attrs["preprocessing"]["clip"]["rule"] == "paper" and fs.attrs["repeated_frames"] == 0
