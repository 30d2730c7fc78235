"""Heads trained and evaluated on cached features (the folds, train and evaluate stages): `dataset` (a video's
artifacts joined, climb-grouped folds), `heads` (the registry), `train` (cross-validation, every frame
predicted), `metrics` (frame-wise and MS-TCN's segment metrics), `bundle` (a model to segment new videos),
`leaderboard` (with the paper's Table 3), `export` (MS-TCN's layout), `score`, and their `commands`.

May import: core, annotations, features.
"""
