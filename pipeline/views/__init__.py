"""What the user looks at and checks: dataset statistics (`stats`, the stats stage), pictures (`plots`), the
dataset's status and one video's details as data and text (`summary`), a video's timeline and contact sheet
(`look`), text tables (`tables`), a segmentation as phases (`phases`), a new video segmented end to end
(`predict`), every artifact checked (`verify`), and their `commands`.

May import: core, media, annotations, persons, features, learning.
"""
