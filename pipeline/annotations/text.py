"""The text of annotation cells and names, as every reader of them compares it: the bottom of `annotations`."""
from __future__ import annotations

import math
import re
import unicodedata

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mts", ".mpg", ".mpeg")


def normalize(text: object) -> str:
    """Case-, accent- and spacing-insensitive key: ' Début ' -> 'debut', 'Temps_Fin' -> 'temps fin'."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\s_]+", " ", text).strip().lower()


def video_key(name: object) -> str:
    """How a sheet name or video cell is matched to a video: normalized, without a video extension."""
    key = normalize(name)
    stem, dot, ext = key.rpartition(".")
    return stem if dot and f".{ext}" in VIDEO_SUFFIXES else key


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""
