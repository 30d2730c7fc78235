from __future__ import annotations

import urllib.error

import pyarrow.parquet as pq
import pytest
import torch

from pipeline.errors import BouldersegError
from pipeline.persons import UNTRAINED_REASON, detect_persons, load_detector


def test_untrained_detector_keeps_every_frame_and_says_why(photo_frames, tmp_path):
    out = tmp_path / "p.parquet"
    table = detect_persons(photo_frames, out, pretrained=False, weights_dir=tmp_path / "w", imgsz=160, batch=3)
    assert pq.read_table(out).equals(table)
    assert table.column_names == ["frame", "n_persons", "confidence", "box", "keep", "reason"]
    assert table["frame"].to_pylist() == [0, 1, 2, 3]
    assert table["keep"].to_pylist() == [True] * 4
    assert set(table["reason"].to_pylist()) == {UNTRAINED_REASON}
    assert table.schema.metadata[b"pretrained"] == b"False"


def test_weights_file_is_loaded_and_keep_follows_detections(photo_frames, tmp_path):
    # an untrained network saved where the COCO weights go: exercises the pretrained code path
    weights = tmp_path / "w"
    weights.mkdir()
    load_detector(model="yolo11n", pretrained=False, weights_dir=weights).save(weights / "yolo11n.pt")
    table = detect_persons(photo_frames, tmp_path / "p.parquet", pretrained=True, weights_dir=weights,
                           imgsz=160, conf=0.0001)
    n, keep = table["n_persons"].to_pylist(), table["keep"].to_pylist()
    assert keep == [k > 0 for k in n]
    assert all((r == "person detected") == k for r, k in zip(table["reason"].to_pylist(), keep))


def test_missing_weights_offline_fail_at_once_with_instructions(photo_frames, tmp_path):
    out = tmp_path / "p.parquet"
    with pytest.raises(BouldersegError) as e:
        detect_persons(photo_frames, out, pretrained=True, weights_dir=tmp_path / "w")
    msg = str(e.value)
    assert f"missing pretrained weights {tmp_path / 'w' / 'yolo11n.pt'}" in msg
    assert "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n.pt" in msg
    assert "dvc exp run -S weights.pretrained=false" in msg
    assert not out.exists()


def test_failed_download_reports_the_reason(photo_frames, tmp_path, monkeypatch):
    def no_network(url, dst, progress=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.delenv("BOULDERSEG_OFFLINE")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(BouldersegError, match=r"download failed: URLError.*Name or service not known"):
        detect_persons(photo_frames, tmp_path / "p.parquet", pretrained=True, weights_dir=tmp_path / "w")
