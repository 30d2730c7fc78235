"""Dense optical flow between consecutive pipeline frames (OpenCV's DIS): motion features with no weights.

The clip is 8 consecutive frames at 25 fps under both clip rules (with the default 16-frame windows every 8 frames,
consecutive windows' clips tile the video). Fed frame t's vector is the flow from frame t - 1 to t, summarised as
magnitude-weighted orientation histograms: BINS directions (bin 0 rightwards, then clockwise as the image shows
it, y down), each cell's value the mean flow magnitude in that direction (fed-frame pixels per frame step), over a
GRID x GRID grid of the whole frame, then over a BOX_GRID x BOX_GRID grid of the tracked person's box (the persons
stage's `near_box`, interpolated between detections; no person: zeros). The clip's first frame has no predecessor
in it: its vector is zeros. So frame-level pooling (stack or mean) works as for the other frame-level entries,
and the flow is computed only inside the clip, never across windows. Runs on the CPU whatever `runtime.device`.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from pipeline.features.backbones import PAPER_FPS, Backbone, Clip, InputSpec, register

PRESET = "fast"  # DIS preset: ultrafast | fast | medium (fast: 2.8 ms a 256x576 pair on one core)
GRID, BOX_GRID, BINS = 4, 2, 8
DIM = (GRID * GRID + BOX_GRID * BOX_GRID) * BINS
FRAMES = 8
_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def orientation_histograms(flow: np.ndarray, grid: int) -> np.ndarray:
    """(h, w, 2) flow (dx, dy) in pixels, h and w >= grid -> (grid * grid * BINS,) float32: per cell (row-major),
    per direction bin, the flow's magnitude summed over the cell's pixels in that bin, over its pixel count."""
    h, w = flow.shape[:2]
    magnitude, angle = cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1]))
    bins = np.rint(angle * (BINS / (2 * np.pi))).astype(np.int64) % BINS  # centred: bin 0 is -22.5 to 22.5 degrees
    cell = (np.arange(h) * grid // h)[:, None] * grid + (np.arange(w) * grid // w)[None]  # (h, w)
    pixels = np.bincount(cell.ravel(), minlength=grid * grid)
    sums = np.bincount((cell * BINS + bins).ravel(), weights=magnitude.ravel(), minlength=grid * grid * BINS)
    return (sums.reshape(grid * grid, BINS) / pixels[:, None]).astype(np.float32).ravel()


def box_histograms(flow: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(H, W, 2) flow and a box (x0, y0, x1, y1) as fractions of the frame (NaN: no person) -> (BOX_GRID ** 2 * BINS,)
    orientation histograms of the flow inside it; zeros without a box or for one under BOX_GRID pixels a side."""
    h, w = flow.shape[:2]
    if np.isnan(box).any():
        return np.zeros(BOX_GRID * BOX_GRID * BINS, np.float32)
    x0, x1 = np.clip(np.round(box[[0, 2]] * w).astype(int), 0, w)
    y0, y1 = np.clip(np.round(box[[1, 3]] * h).astype(int), 0, h)
    if x1 - x0 < BOX_GRID or y1 - y0 < BOX_GRID:
        return np.zeros(BOX_GRID * BOX_GRID * BINS, np.float32)
    return orientation_histograms(flow[y0:y1, x0:x1], BOX_GRID)


class FlowFrames(nn.Module):
    """(B, C, T, H, W) RGB in [0, 1] and boxes (B, T, 4) -> (B, T, DIM): each frame's flow from its predecessor in
    the clip as grid then box orientation histograms (frame 0: zeros). Nothing to train."""

    def __init__(self):
        super().__init__()
        self.dis: cv2.DISOpticalFlow | None = None  # built on first use: an OpenCV object cannot be copied or moved

    def forward(self, x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        if self.dis is None:
            self.dis = cv2.DISOpticalFlow_create(_PRESETS[PRESET])
        b, t = x.shape[0], x.shape[2]
        grey = (x.detach().float().clamp(0, 1).mean(1) * 255).round().byte().cpu().numpy()  # (B, T, H, W)
        box = boxes.detach().float().cpu().numpy()  # (B, T, 4)
        out = np.zeros((b, t, DIM), np.float32)
        for i in range(b):
            for j in range(1, t):
                flow = self.dis.calc(grey[i, j - 1], grey[i, j], None)  # (H, W, 2): dx, dy in pixels
                out[i, j] = np.concatenate([orientation_histograms(flow, GRID), box_histograms(flow, box[i, j])])
        return torch.from_numpy(out).to(x.device, x.dtype)


METHOD = {"method": f"OpenCV {cv2.__version__} DIS optical flow between consecutive fed frames, grey (mean of RGB)",
          "dis_preset": PRESET, "grid": GRID, "box_grid": BOX_GRID, "bins": BINS,
          "histogram": "mean flow magnitude (fed-frame pixels) per cell and direction, bin 0 rightwards then clockwise",
          "boxes": "persons stage near_box, interpolated between detections; no person: zeros",
          "first_frame": "zeros (no predecessor in the clip)"}
register(Backbone(
    name="flow", family="flow", level="frame", dim=DIM, make=FlowFrames, weights=None, n_params=0,
    input=InputSpec(Clip(FRAMES, 1 / PAPER_FPS), short_side=256, crop_size=None, mean=(0.0, 0.0, 0.0),
                    std=(1.0, 1.0, 1.0)),
    needs_boxes=True, method=METHOD,
))
