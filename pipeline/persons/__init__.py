"""The person filter (the persons stage): `filter` detects persons on every n-th frame and writes one row per
frame; `detector` is the interface every detector implements; `registry` builds the one `persons.detector`
names: `yolo`, `blazepose` (adapters over `pipeline.models`) or `hog`.

ultralytics is AGPL-3.0: whoever distributes boulderseg together with it (or serves it over a network) must
offer the complete source under the AGPL; a detector with another licence only implements `PersonDetector`.

May import: core, models, media.
"""
