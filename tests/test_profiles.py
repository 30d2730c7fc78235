"""Profiles: one word picks the person filter, the backbones and the weights; params.yaml keeps its comments."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest
import yaml

from e2e import BOULDERSEG, REPO
from pipeline.core import params, profiles
from pipeline.core.errors import BouldersegError
from pipeline.features import backbones


@pytest.fixture
def params_file(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path / "params.yaml"


def test_the_committed_params_are_the_default_profile(params_file):
    assert profiles.current(params_file) == "default"
    assert profiles.apply(profiles.get("default"), params_file) == {}
    assert params_file.read_bytes() == (REPO / "params.yaml").read_bytes()


def test_applying_profiles_in_turn_keeps_comments_and_comes_back_byte_identical(params_file):
    for name in ("paper", "smoke", "shipped"):
        changed = profiles.apply(profiles.get(name), params_file)
        assert changed and profiles.current(params_file) == name
        p = params.load(params_file)  # still valid params
        assert "# frames per window" in params_file.read_text()  # comments stay
        for key, value in profiles.get(name).settings.items():
            node = p.model_dump()
            for part in key.split("."):
                node = node[part]
            assert node == value, key
    profiles.apply(profiles.get("airgapped"), params_file)  # the alias of default
    assert params_file.read_bytes() == (REPO / "params.yaml").read_bytes()


def test_every_profile_sets_the_same_keys_and_only_real_backbones():
    every = backbones.load_all()
    for p in profiles.PROFILES.values():
        assert tuple(p.settings) == profiles.GOVERNED, p.name
        for key, names in p.settings.items():
            if key.startswith("features.backbones."):
                family = key.rsplit(".", 1)[-1]
                assert all(every[n].family == family for n in names), (p.name, key)
    paper = {n for k, v in profiles.get("paper").settings.items() if k.startswith("features.backbones.") for n in v}
    assert paper == {name for name, b in every.items() if b.in_paper} and len(paper) == 13
    assert profiles.get("smoke").settings["weights.pretrained"] is False
    for name in ("default", "shipped", "smoke"):  # the base install runs them, with no network
        assert profiles.get(name).offline and not profiles.get(name).extras
        assert profiles.get(name).settings["persons.detector"] == "blazepose"
    assert profiles.get("paper").settings["persons.detector"] == "yolo"
    assert profiles.get("paper").settings["labels.drop"] == ["stopwatch", "nothing"]
    # the paper's protocol feeds whole frames; the others cut around the climber, as measured (docs/backbones.md)
    assert {name: p.settings["features.crop"] for name, p in profiles.PROFILES.items()} == {
        "default": "climber", "shipped": "climber", "paper": "none", "smoke": "climber"}


def test_a_profile_whose_extra_is_missing_stops_with_the_pip_line_and_writes_nothing(params_file):
    before = params_file.read_bytes()
    needs = dataclasses.replace(profiles.get("paper"), extras={"a_module_nobody_installed": "transformers"})
    with pytest.raises(BouldersegError, match=r"profile 'paper' needs the transformers extra, which is not installed: "
                                              r"pip install 'boulderseg\[transformers\]'.*params.yaml is unchanged"):
        profiles.apply(needs, params_file)
    assert params_file.read_bytes() == before


def test_an_unknown_profile_lists_the_known_ones():
    with pytest.raises(BouldersegError, match="unknown profile 'fast'. Profiles: default, shipped, paper, smoke"):
        profiles.get("fast")


def test_the_command_lists_profiles_marks_the_current_one_and_applies(params_file):
    root = params_file.parent
    out = subprocess.run([BOULDERSEG, "profile"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "* default (alias: airgapped)" in out.stdout and "  paper" in out.stdout
    for name in profiles.PROFILES:
        assert profiles.get(name).sample in out.stdout
    out = subprocess.run([BOULDERSEG, "profile", "smoke"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "weights.pretrained: True -> False" in out.stdout and "Run `dvc repro`" in out.stdout
    assert yaml.safe_load(params_file.read_text())["weights"]["pretrained"] is False
    out = subprocess.run([BOULDERSEG, "profile", "nope"], cwd=root, capture_output=True, text=True)
    assert out.returncode != 0 and "error: unknown profile 'nope'" in out.stderr


def test_run_applies_the_profile_then_runs_dvc_repro_and_passes_its_failure_on(params_file):
    root = params_file.parent  # no DVC repository here: `dvc repro` fails at once
    out = subprocess.run([BOULDERSEG, "profile", "smoke", "--run"], cwd=root, capture_output=True, text=True)
    assert out.returncode != 0 and "not inside of a DVC repository" in out.stderr
    assert profiles.current(params_file) == "smoke"  # applied first
    out = subprocess.run([BOULDERSEG, "profile", "airgapped", "--run"], cwd=root, capture_output=True, text=True)
    assert out.returncode != 0 and "not inside of a DVC repository" in out.stderr
    assert profiles.current(params_file) == "default"  # the alias: the default profile, then dvc repro
    out = subprocess.run([BOULDERSEG, "airgapped"], cwd=root, capture_output=True, text=True)  # the old command
    assert out.returncode == 2 and out.stderr == "error: `boulderseg airgapped` is now `boulderseg profile default --run`.\n"
