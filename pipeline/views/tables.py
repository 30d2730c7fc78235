"""Text views of the registry and of what the pipeline stored, for `boulderseg backbones` and `inspect`."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Left-aligned columns, two spaces apart."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def backbones_table(*, weights_dir: str | Path, listed: Sequence[str] = (),
                    pooling: Callable[[str, str], str] = lambda name, family: "stack", fps: float = 25.0) -> str:
    """Every registered backbone: family, level, feature dim (its frame pooling: `pooling(name, family)`), its clip
    under each rule (frames x step in pipeline frames at `fps`, and seconds), input, parameters, weights."""
    from pipeline.features.backbones import FAMILIES, load_all

    def span(clip) -> str:
        return f"{clip.frames}x{clip.step(fps)} {clip.seconds(fps):.2f}s"

    rows = []
    for b in sorted(load_all().values(), key=lambda b: (FAMILIES.index(b.family), b.name)):
        size = f"{b.input.crop_size}²" if b.input.crop_size else f"short side {b.input.short_side}"
        weights = "none" if b.weights is None else b.weights.describe()
        here = "-" if b.weights is None else "yes" if b.weights.present(weights_dir) else "no"
        rows.append([("* " if b.name in listed else "  ") + b.name, b.family, b.level, b.feature_dim(pooling(b.name, b.family)),
                     span(b.input.clip("paper")), span(b.input.clip("upstream")), size, f"{b.n_params / 1e6:.1f}M",
                     "yes" if b.in_paper else "", here, weights])
    header = ["  name", "family", "level", "dim", "paper clip", "upstream clip", "input", "params", "paper", "present",
              "weights"]
    return table(rows, header) + (f"\n* listed in features.backbones; present: in {weights_dir}; clips: frames x step "
                                  f"(pipeline frames at {fps:g} fps) and the seconds they span")


def heads_table() -> str:
    """Every registered head: kind, parameters at D = 2048 and 5 classes, and the params keys it reads."""
    from pipeline.learning.heads import HEADS, n_parameters

    def size(n: int) -> str:
        return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"

    rows = [[h.name, "per-window" if h.kind == "window" else "sequence", size(n_parameters(h.name)),
             ", ".join(f"model.{o}" for o in h.options), h.about] for h in HEADS.values()]
    return table(rows, ["name", "kind", "params", "reads (train.heads.<name>.*)", "what"]) + (
        "\nevery head but logreg (solved, not trained) also reads epochs, lr, weight_decay and batch, and with train.select "
        "nested select_epochs; train.loss applies to those, train.mode_filter to all")


def feature_stores(features_dir: str | Path, backbone: str | None = None) -> list[dict]:
    """Per backbone and video: shape, dtype, chunks, bytes on disk and the recorded configuration."""
    import zarr

    out = []
    for path in sorted(Path(features_dir).glob(f"{backbone or '*'}/*.zarr")):
        group = zarr.open_group(str(path), mode="r")
        features = group["features"]
        out.append({"backbone": path.parent.name, "video": path.stem, "shape": list(features.shape),
                    "dtype": str(features.dtype), "chunks": list(features.chunks),
                    "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
                    "config": dict(group.attrs)})
    return out


def features_report(stores: list[dict]) -> str:
    """`feature_stores` as lines: per store its line and what only it records (its frames' hash, say), then per
    backbone what every store of it records, once."""
    lines = []
    for backbone in dict.fromkeys(s["backbone"] for s in stores):
        mine = [s for s in stores if s["backbone"] == backbone]
        shared = {k: v for k, v in mine[0]["config"].items() if all(s["config"].get(k) == v for s in mine)}
        for s in mine:
            lines.append(f"{backbone}/{s['video']}: {tuple(s['shape'])} {s['dtype']}, chunks {tuple(s['chunks'])}, "
                         f"{s['bytes'] / 1024:.0f} KiB on disk")
            lines += [f"    {k}: {json.dumps(v)}" for k, v in s["config"].items() if k not in shared]
        lines.append(f"  recorded by {'every ' + backbone + ' store' if len(mine) > 1 else 'it'}:")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in shared.items()]
    return "\n".join(lines)
