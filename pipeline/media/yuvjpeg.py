"""Decoded video frames -> JPG bytes straight from their YUV planes, with no RGB round trip.

JPEG stores full-range BT.601 YCbCr, 4:2:0 here, which is what most video already holds: the
planes are resized, their range widened when the video's is limited (16-235), converted when
the video says it is BT.709, turned upright as the container's rotation says, and encoded.
"""
from __future__ import annotations

import cv2
import numpy as np
import simplejpeg

# (y, cb, cr) from (r, g, b): the luma weights kr, kb define each standard
def _ycbcr(kr: float, kb: float) -> np.ndarray:
    kg = 1 - kr - kb
    return np.array([[kr, kg, kb],
                     [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5],
                     [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)]])


BT709_TO_601 = (_ycbcr(0.299, 0.114) @ np.linalg.inv(_ycbcr(0.2126, 0.0722))).astype(np.float32)
Y_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
C_FULL = np.clip(np.round((np.arange(256) - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)
AVCOL_SPC_BT709, AVCOL_RANGE_JPEG = 1, 2  # libavutil's colorspace and colour-range codes


def _plane(frame, i: int) -> np.ndarray:  # (h, w) uint8 view of plane i without its row padding
    p = frame.planes[i]
    return np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]


def _bt709_to_601(y: np.ndarray, u: np.ndarray, v: np.ndarray, *, full: bool) -> list[np.ndarray]:
    y, cb, cr = y.astype(np.float32), u.astype(np.float32) - 128, v.astype(np.float32) - 128
    if not full:
        y, cb, cr = (y - 16) * (255 / 219), cb * (255 / 224), cr * (255 / 224)
    m = BT709_TO_601
    luma_from_chroma = cv2.resize(m[0, 1] * cb + m[0, 2] * cr, y.shape[::-1], interpolation=cv2.INTER_LINEAR)
    planes = [y + luma_from_chroma, m[1, 1] * cb + m[1, 2] * cr + 128, m[2, 1] * cb + m[2, 2] * cr + 128]
    return [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in planes]


def encode(frame, size: tuple[int, int], quality: int) -> bytes:
    """A PyAV `VideoFrame` as JPG bytes, resized to `size` (width, height, as displayed) and upright."""
    full = frame.color_range == AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj")
    bt709 = frame.colorspace == AVCOL_SPC_BT709
    quarter_turns = round(frame.rotation / 90) % 4  # counter-clockwise, as np.rot90 turns
    if frame.format.name not in ("yuv420p", "yuvj420p"):  # 4:2:2, 4:4:4, 10-bit…: to 8-bit 4:2:0 first
        frame = frame.reformat(format="yuvj420p" if full else "yuv420p")
    w, h = size if quarter_turns % 2 == 0 else size[::-1]
    y = cv2.resize(_plane(frame, 0), (w, h), interpolation=cv2.INTER_AREA)
    u, v = (cv2.resize(_plane(frame, i), ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_LINEAR)
            for i in (1, 2))  # chroma is smooth: bilinear is enough, and 6x faster
    if bt709:
        y, u, v = _bt709_to_601(y, u, v, full=full)
    elif not full:
        y, u, v = cv2.LUT(y, Y_FULL), cv2.LUT(u, C_FULL), cv2.LUT(v, C_FULL)
    if quarter_turns:
        y, u, v = (np.ascontiguousarray(np.rot90(p, quarter_turns)) for p in (y, u, v))
    return simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality)
