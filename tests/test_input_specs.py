"""Every backbone's input spec against its upstream definition, not against itself: mean, std, resize, crop, clip,
channel order and value range. A drift in our registry, or an upstream change, fails here."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from pipeline.features import backbones
from pipeline.features.backbones import Clip
from pipeline.features.extract import load_frame

REGISTRY = backbones.load_all()
KINETICS = ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))


def assert_spec(name: str, *, mean, std, short_side: int, crop: int | None, clip: Clip, resize=None) -> None:
    spec = REGISTRY[name].input
    assert spec.mean == pytest.approx(tuple(mean)) and spec.std == pytest.approx(tuple(std)), name
    assert (spec.short_side, spec.crop_size, spec.resize) == (short_side, crop, resize), name
    assert spec.upstream.frames == clip.frames and spec.upstream.step_s == pytest.approx(clip.step_s), name


# torchvision: each weights enum's transforms() and its documented evaluation clip (frame_rate, clip_len)
TORCHVISION = {"s3d_k": "S3D_Weights", "mvit_v2_s": "MViT_V2_S_Weights", "swin3d_t": "Swin3D_T_Weights",
               "r2plus1d_18": "R2Plus1D_18_Weights"}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_specs_are_the_weights_own_transforms(name):
    from torchvision.models import video

    weights = getattr(video, TORCHVISION[name]).KINETICS400_V1
    t = weights.transforms()
    rate = float(re.search(r"frame_rate=([\d.]+)", weights.meta["_docs"]).group(1))
    frames = int(re.search(r"clip_len=(\d+)", weights.meta["_docs"]).group(1))
    resize = tuple(t.resize_size) if len(t.resize_size) == 2 else None
    assert_spec(name, mean=t.mean, std=t.std, short_side=min(t.resize_size), crop=t.crop_size[0],
                clip=Clip(frames, 1 / rate), resize=resize)


def test_transformers_specs_are_the_processors_and_configs_own():
    import transformers as tf

    clip = tf.CLIPImageProcessor()
    assert_spec("clip_vit_b32", mean=clip.image_mean, std=clip.image_std, short_side=clip.size["shortest_edge"],
                crop=clip.crop_size["height"], clip=backbones.image())
    vivit = tf.VivitImageProcessor()  # rescale 1/127.5 with offset: [-1, 1], i.e. (x - 0.5) / 0.5 on [0, 1]
    assert vivit.rescale_factor == pytest.approx(1 / 127.5) and vivit.offset and vivit.image_mean == [0.5] * 3
    assert_spec("vivit", mean=(0.5,) * 3, std=(0.5,) * 3, short_side=vivit.size["shortest_edge"],
                crop=vivit.crop_size["height"], clip=backbones.kinetics(tf.VivitConfig().num_frames, 2))
    vjepa = tf.VJEPA2VideoProcessor()
    assert_spec("vjepa2_l", mean=vjepa.image_mean, std=vjepa.image_std, short_side=vjepa.size["shortest_edge"],
                crop=vjepa.crop_size["height"], clip=backbones.kinetics(tf.VJEPA2Config().frames_per_clip, 2))
    # Where the checkpoint's preprocessor_config.json overrides the class defaults, the checkpoint's values:
    # MCG-NJU/videomae-base-finetuned-kinetics normalises with ImageNet's mean/std (the class default is 0.5);
    # facebook/dinov2-small resizes to 256 and crops 224 with ImageNet's mean/std (BitImageProcessor's: 224, CLIP's).
    videomae = tf.VideoMAEImageProcessor()
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert_spec("videomae_b", mean=imagenet[0], std=imagenet[1], short_side=videomae.size.shortest_edge,
                crop=videomae.crop_size.height, clip=backbones.kinetics(tf.VideoMAEConfig().num_frames, 4))
    assert_spec("dinov2_vits14", mean=imagenet[0], std=imagenet[1], short_side=256, crop=224, clip=backbones.image())


# pytorchvideo: the parameters its PyTorch Hub pages publish (pytorch.org/hub/facebookresearch_pytorchvideo_x3d,
# _resnet, _slowfast: side_size, crop_size, num_frames, sampling_rate at 30 fps, mean 0.45, std 0.225); i3d_r50
# as pytorchvideo's Kinetics evaluation (256 / 256, 8 x 8); x3d_l as the X3D paper (356 / 312, 16 x 5).
PYTORCHVIDEO = {"x3d_xs": (182, 182, 4, 12), "x3d_s": (182, 182, 13, 6), "x3d_m": (256, 256, 16, 5),
                "x3d_l": (356, 312, 16, 5), "r3d": (256, 256, 8, 8), "i3d": (256, 256, 8, 8),
                "slowfast_r50": (256, 256, 32, 2)}


@pytest.mark.parametrize("name", sorted(PYTORCHVIDEO))
def test_pytorchvideo_specs_are_the_published_ones(name):
    side, crop, frames, rate = PYTORCHVIDEO[name]
    assert_spec(name, mean=KINETICS[0], std=KINETICS[1], short_side=side, crop=crop, clip=Clip(frames, rate / 30))


def test_every_backbone_is_checked_against_a_source_here_or_has_no_normalisation_of_its_own():
    checked = {*TORCHVISION, *PYTORCHVIDEO, "clip_vit_b32", "vivit", "vjepa2_l", "videomae_b", "dinov2_vits14"}
    # whole-frame models that take RGB in [0, 1] and do their own resizing (BlazePose's graph, YOLO's letterbox,
    # pixels' grey thumbnails, flow's grey frames); EfficientNet-Lite's (x - 127) / 128 on 0-255 pixels; S3D-G
    # (MIL-NCE): [0, 1] RGB
    own = {"blazepose": (0.0, 1.0), "yolo_pose": (0.0, 1.0), "pixels": (0.0, 1.0), "flow": (0.0, 1.0), "s3d_h": (0.0, 1.0),
           "efficientnet_lite0": (127 / 255, 128 / 255)}
    assert set(REGISTRY) == checked | set(own)
    for name, (mean, std) in own.items():
        assert REGISTRY[name].input.mean == (mean,) * 3 and REGISTRY[name].input.std == (std,) * 3, name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_frames_reach_every_model_in_rgb_order_and_its_value_range(name, tmp_path):
    spec = REGISTRY[name].input
    rgb = np.array([200, 100, 30], np.uint8)
    cv2.imwrite(str(tmp_path / "f.png"), np.full((300, 400, 3), rgb[::-1], np.uint8))  # OpenCV writes BGR
    x, _ = load_frame(tmp_path / "f.png", spec)  # (C, H, W)
    expected = (rgb / 255 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(x[:, x.shape[1] // 2, x.shape[2] // 2], expected, atol=1e-5)
    if spec.crop_size:
        assert x.shape[1:] == (spec.crop_size, spec.crop_size)
