"""Frozen backbones' features, cached (the features stages): `windows` (sliding windows and the clip each feeds),
`extract` (frames -> features, decoding overlapped with compute), `store` (one Zarr group per video and backbone,
recording what produced it), `backbones` (the typed registry, one module per library family).

May import: core, models, media.
"""
