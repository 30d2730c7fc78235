from __future__ import annotations

import urllib.error

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.core.errors import BouldersegError
from pipeline.core.weights import WeightsFile, sha256_of
from pipeline.persons import yolo as yolo_module
from pipeline.persons.filter import UNTRAINED_REASON, carry, detect_persons, detection_frames, nearest
from pipeline.persons.yolo import Yolo


class Recording:
    """The real detector, recording how many images each call got."""

    def __init__(self, detector):
        self.detector, self.calls, self.provenance, self.trained = detector, [], detector.provenance, detector.trained

    def detect(self, images):
        self.calls.append(len(images))
        return self.detector.detect(images)


def yolo(tmp_path, **kw) -> Yolo:
    return Yolo(model="yolo11n", weights_dir=tmp_path / "w", imgsz=160, **kw)


def test_untrained_detector_passes_every_frame_and_says_why(photo_frames, tmp_path):
    out = tmp_path / "p.parquet"
    detector = Recording(yolo(tmp_path, pretrained=False))
    table = detect_persons(photo_frames, out, detector=detector, batch=3)
    assert detector.calls == [3, 1]  # runtime.persons_batch frames per forward pass
    assert pq.read_table(out).equals(table)
    assert table.column_names == ["frame", "detected", "n_persons", "confidence", "box", "near_box", "person", "reason",
                                  "found_by", "track", "foreground"]
    assert table["frame"].to_pylist() == [0, 1, 2, 3]
    assert table["person"].to_pylist() == [True] * 4
    assert set(table["reason"].to_pylist()) == {UNTRAINED_REASON}
    assert table.schema.metadata[b"model"] == b"yolo11n"
    assert table.schema.metadata[b"weights"] == b"{'pretrained': False}"


@pytest.fixture
def pinned_yolo(tmp_path, monkeypatch):
    """An untrained network saved in ultralytics' format where the COCO weights go, pinned by its hash:
    exercises the pretrained code path (the published file cannot be downloaded here)."""
    weights = tmp_path / "w"
    weights.mkdir()
    torch.manual_seed(1)
    yolo(tmp_path, pretrained=False).yolo.save(weights / "yolo11n.pt")
    pin = WeightsFile(yolo_module.YOLO_WEIGHTS["yolo11n"].url, sha256_of(weights / "yolo11n.pt"))
    monkeypatch.setitem(yolo_module.YOLO_WEIGHTS, "yolo11n", pin)
    return weights / "yolo11n.pt"


def test_pinned_pickled_checkpoint_loads_and_person_follows_detections(pinned_yolo, photo_frames, tmp_path):
    saved = torch.load(pinned_yolo, weights_only=False)["model"].float().state_dict()
    detector = yolo(tmp_path, pretrained=True, conf=0.0001)
    assert not list(pinned_yolo.parent.glob("*.tensors.pt"))  # nothing beside it that a later load would trust
    for k, v in detector.yolo.model.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    assert detector.provenance["weights"]["sha256"] == sha256_of(pinned_yolo)
    table = detect_persons(photo_frames, tmp_path / "p.parquet", detector=detector, batch=4)
    n, person = table["n_persons"].to_pylist(), table["person"].to_pylist()
    assert person == [k > 0 for k in n]
    assert all((r == "person detected") == k for r, k in zip(table["reason"].to_pylist(), person))


def test_batch_size_changes_speed_not_results(pinned_yolo, bikes_frames, tmp_path):
    detector = yolo(tmp_path, pretrained=True, conf=0.01)
    one = detect_persons(bikes_frames, tmp_path / "a.parquet", detector=detector, batch=1)
    many = detect_persons(bikes_frames, tmp_path / "b.parquet", detector=detector, batch=16)
    assert one["n_persons"].to_pylist() == many["n_persons"].to_pylist()
    np.testing.assert_allclose(one["confidence"].to_numpy(), many["confidence"].to_numpy(), atol=1e-4)


def test_missing_weights_offline_fail_at_once_with_instructions(tmp_path):
    with pytest.raises(BouldersegError) as e:
        yolo(tmp_path, pretrained=True)
    msg = str(e.value)
    assert f"missing pretrained weights {tmp_path / 'w' / 'yolo11n.pt'}" in msg
    assert "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n.pt" in msg
    assert f"put it at {tmp_path / 'w' / 'yolo11n.pt'}" in msg
    assert "`boulderseg profile default` (no download)" in msg


def test_failed_download_reports_the_reason(tmp_path, monkeypatch):
    def no_network(url, dst, progress=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.delenv("BOULDERSEG_OFFLINE")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(BouldersegError, match=r"download failed: URLError.*Name or service not known"):
        yolo(tmp_path, pretrained=True)
    assert list((tmp_path / "w").iterdir()) == []  # no partial download left behind


def test_a_model_without_pinned_weights_is_refused(tmp_path):
    with pytest.raises(BouldersegError, match="persons.model 'yolov5n' has no pinned weights; pinned: yolo11n, "):
        Yolo(model="yolov5n", pretrained=True, weights_dir=tmp_path)


def test_detection_frames_include_the_first_and_the_last():
    assert detection_frames(10, 3).tolist() == [0, 3, 6, 9]
    assert detection_frames(11, 3).tolist() == [0, 3, 6, 9, 10]
    assert detection_frames(1, 5).tolist() == [0]
    assert detection_frames(4, 1).tolist() == [0, 1, 2, 3]


def test_frames_between_detections_pass_when_either_neighbour_saw_a_person():
    detected = np.array([0, 3, 6, 9, 10])
    person, reasons = carry(11, detected, np.array([False, True, False, False, True]))
    assert person.tolist() == [False, True, True, True, True, True, False, False, False, False, True]
    assert reasons == ["no person detected", "carried from frame 3", "carried from frame 3", "person detected",
                       "carried from frame 3", "carried from frame 3", "no person detected",
                       "no person at frames 6 and 9", "no person at frames 6 and 9", "no person detected",
                       "person detected"]
    # the first and last frames are detections of their own: a person there is never carried away
    assert carry(5, np.array([0, 4]), np.array([True, False]))[0].tolist() == [True] * 4 + [False]
    assert carry(5, np.array([0, 4]), np.array([False, True]))[0].tolist() == [False] + [True] * 4


def test_the_near_box_follows_the_previous_one():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 120, 120]], np.float32)
    assert nearest(boxes, None) == 0  # nothing to follow yet: the most confident
    assert nearest(boxes, np.array([95, 98, 118, 121], np.float32)) == 1


def test_detector_runs_only_on_every_nth_frame(pinned_yolo, bikes_frames, tmp_path):
    detector = Recording(yolo(tmp_path, pretrained=True, conf=0.01))
    table = detect_persons(bikes_frames, tmp_path / "p.parquet", detector=detector, every=7, batch=4)
    n = table.num_rows
    assert sum(detector.calls) == len(detection_frames(n, 7)) == 16  # 100 frames: 0, 7, … 98, and 99
    assert np.flatnonzero(table["detected"].to_numpy()).tolist() == detection_frames(n, 7).tolist()
    off = ~table["detected"].to_numpy()
    assert (table["n_persons"].to_numpy()[off] == 0).all() and table.schema.metadata[b"every"] == b"7"


def test_yolo_searches_tiles_as_one_batch_each_and_then_follows_the_track(pinned_yolo, bikes_frames, tmp_path):
    from pipeline.persons.filter import Search

    search = Search(tiles=(2, 3), track=True, max_gap=1.0)
    blind = Recording(yolo(tmp_path, pretrained=True, conf=0.999))  # random weights this sure: nobody, anywhere
    table = detect_persons(bikes_frames, tmp_path / "a.parquet", detector=blind, every=10, search=search, fps=10)
    assert blind.calls == [1, 4, 9] * 11  # 100 frames: 0, 10, … 90, 99; the whole frame, then each grid in one batch
    assert not table["person"].to_numpy().any() and set(table["found_by"].to_pylist()) == {""}
    seeing = Recording(yolo(tmp_path, pretrained=True, conf=0.0001))  # boxes everywhere
    table = detect_persons(bikes_frames, tmp_path / "b.parquet", detector=seeing, every=2, search=search, fps=10)
    # 51 detections, 0.2 s apart: a crop around each of (at most) two live tracks, and once a second (every 5th
    # detection: frames 0, 10, … 90) a scan: the whole frame and each tile grid as one batch
    assert seeing.calls[:3] == [1, 4, 9] and seeing.calls.count(4) == seeing.calls.count(9) == 10
    assert set(seeing.calls) == {1, 4, 9} and 3 + 9 * 4 + 41 <= len(seeing.calls) <= 3 + 9 * 5 + 41 * 2
    found = table.filter(table["detected"])["found_by"].to_pylist()
    assert found[0] == "frame" and "track" in found[1:]
