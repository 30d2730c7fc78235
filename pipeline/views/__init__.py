"""What the user looks at and checks: dataset statistics (`stats`, the stats stage), pictures (`plots`), the
dataset's status, one video's details and timeline (`look`), text tables (`tables`), a segmentation as phases
(`phases`), a new video segmented end to end (`predict`), every artifact checked (`verify`), and their `commands`.

May import: core, media, annotations, persons, features, learning.
"""
