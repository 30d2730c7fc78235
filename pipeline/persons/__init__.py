"""The person filter (the persons stage): `filter` detects persons on every n-th frame and writes one row per
frame; `detector` is the interface every detector implements; `registry` builds the one `persons.detector`
names: `yolo`, `blazepose` (adapters over `pipeline.models`) or `hog`.

ultralytics is AGPL-3.0: whoever distributes boulderseg together with it (or serves it over a network) must
offer the complete source under the AGPL; a detector with another licence only implements `PersonDetector`.

May import: core, models, media.
"""
from __future__ import annotations

LOW_SHARE = 0.5  # a video keeping less than this share of its frames is warned about wherever its share is shown


def low_share_advice(key: str, share: float, *, fix: str | None = None) -> str:
    """What to say of a video whose person share is below LOW_SHARE; `fix`: what to try (default: the persons keys)."""
    fix = fix or ("If a climber is there, try persons.track true, persons.tiles [2, 3], a larger persons.short_side "
                  f"or a lower persons.conf; `boulderseg inspect video {key}` draws what it found.")
    return f"{key}: only {share:.0%} of its frames show a person to the filter, and only those are trained on and scored. {fix}"
