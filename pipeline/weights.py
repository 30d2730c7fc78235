"""Pretrained weights: found in the weights directory, else fetched once by URL, else a clear stop."""
from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import BouldersegError


def fetch(url: str, weights_dir: str | Path) -> Path:
    """Path of the file `url` names, inside `weights_dir`, downloading it if absent.

    With BOULDERSEG_OFFLINE=1 nothing is downloaded. A failed download raises at once,
    saying which file is missing, where it comes from, where to put it and how to run without it.
    """
    dst = Path(weights_dir) / url.rsplit("/", 1)[-1]
    if dst.is_file():
        return dst
    reason = "BOULDERSEG_OFFLINE=1 is set"
    if os.environ.get("BOULDERSEG_OFFLINE") != "1":
        import torch.hub

        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dst), progress=True)
            return dst
        except Exception as e:  # noqa: BLE001 - every network failure is the same user problem
            reason = f"download failed: {type(e).__name__}: {str(e)[:160]}"
    raise BouldersegError(
        f"missing pretrained weights {dst} ({reason}).\n"
        f"  Download {url}\n"
        f"  and put it at {dst} (weights.dir in params.yaml), or run without pretrained weights:\n"
        f"  dvc exp run -S weights.pretrained=false"
    )
