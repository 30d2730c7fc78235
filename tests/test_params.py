from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from pipeline.core import params
from pipeline.core.errors import BouldersegError


def problems_of(tmp_path: Path, edit) -> list[str]:
    """The problem lines load() reports after `edit` changes a copy of the shipped params."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(p)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(BouldersegError) as e:
        params.load(path)
    head, *lines = str(e.value).split("\n  ")
    assert head == f"{path}: {len(lines)} problem(s):"
    return lines


def test_the_shipped_params_load_into_typed_sections():
    p = params.load(REPO / "params.yaml")
    assert p.features.window == 16 and p.data.fps == 25.0 and p.runtime.device == "auto"
    assert p.videos["climb1_face"].climb == "climb1" and p.train.heads["lstm"].model["hidden"] == 128


def test_a_typo_names_the_key_path_and_the_nearest_valid_key(tmp_path):
    def edit(p):
        p["features"]["strid"] = p["features"].pop("stride")
        p["videos"]["climb1_face"]["ofset"] = 0.4
    assert problems_of(tmp_path, edit) == [
        "features.strid: unknown key; did you mean 'stride'? valid keys: backbones, window, stride, frame_pooling, clip, "
        "dtype, skip_static, pose_smoothing, crop, crop_margin, crop_short_side",
        "videos.climb1_face.ofset: unknown key; did you mean 'offset'? "
        "valid keys: climb, video, annotation, view, sheet, offset",
    ]


def test_backbones_are_listed_by_family_and_the_old_single_key_says_where_it_went(tmp_path):
    def edit(p):
        p["features"]["backbone"] = "x3d_xs"
        p["features"]["backbones"]["transformer"] = ["dinov2_vits14"]
    assert problems_of(tmp_path, edit) == [
        "features.backbones.transformer: unknown key; did you mean 'transformers'? valid keys: pytorchvideo, "
        "torchvision, s3dg, transformers, ultralytics, pixels, efficientnet, mediapipe, flow",
        "features.backbone: moved to features.backbones.<family> (a list per library family)",
    ]


def test_an_unknown_section_is_named_with_the_sections(tmp_path):
    assert problems_of(tmp_path, lambda p: p.update(featurs={})) == [
        "featurs: unknown key; did you mean 'features'? valid keys: data, weights, labels, frames, persons, "
        "features, stats, train, videos, unannotated, runtime"]


def test_wrong_types_say_what_was_expected(tmp_path):
    def edit(p):
        p["features"]["window"] = "16"
        p["weights"]["pretrained"] = "no"
        p["train"]["heads"]["linear"]["lr"] = "1e-3"
        p["labels"]["classes"] = "climbing"
        p["labels"]["overlap"] = "first"
    assert problems_of(tmp_path, edit) == [
        "weights.pretrained: expected true or false, got 'no' (str)",
        "labels.classes: expected a list, got 'climbing' (str)",
        "labels.overlap: input should be 'later_wins', 'priority' or 'error', got 'first' (str)",
        "features.window: expected an integer, got '16' (str) (remove the quotes)",
        "train.heads.linear.lr: expected a number, got '1e-3' (str) (remove the quotes)",
    ]


def test_missing_required_keys_and_out_of_range_values(tmp_path):
    def edit(p):
        del p["videos"]["climb2_face"]["climb"]
        p["data"]["fps"] = 0
        p["train"]["folds"] = 1
    assert problems_of(tmp_path, edit) == [
        "data.fps: input should be greater than 0, got 0 (int)",
        "train.folds: input should be greater than or equal to 2, got 1 (int)",
        "videos.climb2_face.climb: missing (required)",
    ]


def test_run_time_settings_that_moved_say_where(tmp_path):
    assert problems_of(tmp_path, lambda p: p["features"].update(batch_size=4)) == [
        "features.batch_size: moved to runtime.features_batch (it changes speed, not results, so no stage "
        "reruns for it)"]


def test_numbers_need_no_decimal_point_and_climbs_may_be_numbers(tmp_path):
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["train"]["heads"]["linear"]["lr"] = 1
    p["videos"]["climb1_face"]["climb"] = 7
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    loaded = params.load(tmp_path / "params.yaml")
    assert loaded.train.heads["linear"].lr == 1.0 and loaded.videos["climb1_face"].climb == "7"


def test_every_command_reports_params_problems_without_a_traceback(tmp_path):
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["features"]["strid"] = 8
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    r = subprocess.run([sys.executable, "-m", "stages.frames", "v.mp4", "out"], cwd=tmp_path, capture_output=True,
                       text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: params.yaml: 1 problem(s):\n  features.strid: unknown key; did you mean "
                               "'stride'?")
    assert not (tmp_path / "out").exists()


def test_not_yaml_or_not_a_mapping(tmp_path):
    (tmp_path / "params.yaml").write_text("data: [1\n")
    with pytest.raises(BouldersegError, match="params.yaml: not valid YAML"):
        params.load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("- 1\n")
    with pytest.raises(BouldersegError, match=r"1 problem\(s\):\n  \(top level\): expected a mapping, got \[1\]"):
        params.load(tmp_path / "params.yaml")


def test_a_stride_longer_than_the_window_is_refused_naming_both_keys(tmp_path):
    def edit(p):
        p["features"].update(window=8, stride=12)
    assert problems_of(tmp_path, edit) == [
        "features.stride (12) is larger than features.window (8): the 4 frames between consecutive windows would "
        "belong to no window, so no feature would see them and no head would learn their labels. Set features.stride to "
        "at most features.window (8: windows that touch), or raise features.window"]
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["features"].update(window=8, stride=8)  # windows that touch: every frame in one
    (tmp_path / "touching.yaml").write_text(yaml.safe_dump(p))
    assert params.load(tmp_path / "touching.yaml").features.stride == 8
