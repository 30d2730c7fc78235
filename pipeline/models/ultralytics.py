"""Ultralytics YOLO as both parts load it (the person detector and the pose backbone): where its checkpoints are
published, how it is kept off the network and out of $HOME, and a checkpoint's parameters. ultralytics is AGPL-3.0."""
from __future__ import annotations

import os
from pathlib import Path

RELEASES = "https://github.com/ultralytics/assets/releases/download/v8.3.0"


def quiet_ultralytics(config_dir: Path) -> None:
    """No network probes, no settings in $HOME, no font download."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))


def ultralytics_state(ckpt: dict) -> dict:
    """An ultralytics checkpoint (whole pickled modules) -> the detection model's parameters."""
    return (ckpt.get("ema") or ckpt["model"]).float().state_dict()
