"""Pretrained models that serve more than one part, each kept here once: BlazePose (`blazepose`: the person
detector and the pose backbone) and Ultralytics YOLO's loading (`ultralytics`: the detector and the pose backbone).
The parts hold thin adapters to them (`persons.blazepose`, `features.backbones.mediapipe`, ...).

May import: core.
"""
