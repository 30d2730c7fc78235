"""Annotation time cells -> seconds, whatever form the annotator typed them in.

Accepted: numbers (in `unit`: s, ms or frames), strings with a dot or comma decimal,
`mm:ss`, `mm:ss.ss`, `hh:mm:ss(.sss)`, and Excel time, duration and datetime cells
(a datetime counts by its time of day). A two-part `a:b` is always minutes:seconds.
"""
from __future__ import annotations

import datetime as dt
import math
import re

UNITS = ("s", "ms", "frames")
# header words that name a unit, e.g. "Début (ms)", "start_frame"
UNIT_HINTS = {"ms": ("ms", "msec", "millisecond", "milliseconds", "timestamp"),  # the paper's tool: starting-timestamp
              "frames": ("frame", "frames", "image", "images", "img"),
              "s": ("s", "sec", "secs", "second", "seconds", "secondes")}
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:[.,]\d+)?)$")


class TimeFormatError(ValueError):
    """The cell is no time in any accepted form."""


def unit_from_header(header: str) -> str | None:
    """The unit a header names ('Début (ms)' -> 'ms'), or None."""
    words = re.findall(r"[a-z]+", header.lower())
    for unit, hints in UNIT_HINTS.items():
        if any(w in hints for w in words):
            return unit
    return None


def to_seconds(value: object, *, unit: str = "s", fps: float | None = None) -> float:
    """Seconds of one cell; numbers are read in `unit` (frames need the annotation `fps`)."""
    if isinstance(value, bool) or value is None:
        raise TimeFormatError(f"expected a time, got {value!r}")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime):
        value = value.time()
    if isinstance(value, dt.time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        clock = _CLOCK.match(text)
        if clock:
            h, m, s = clock.groups()
            return int(h or 0) * 3600 + int(m) * 60 + float(s.replace(",", "."))
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise TimeFormatError(f"expected seconds (12.5 or 12,5), mm:ss(.ss) or hh:mm:ss, got {text!r}") from None
    if math.isnan(number):
        raise TimeFormatError("empty cell")
    if unit == "ms":
        return number / 1000.0
    if unit == "frames":
        if not fps:
            raise TimeFormatError("times in frames need labels.annotation_fps")
        return number / fps
    return number
