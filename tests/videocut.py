"""A video whose last packets do not decode, like a phone clip's cut-off last packet."""
from __future__ import annotations

from pathlib import Path


def cut_tail(src: Path, out: Path, packets: int) -> Path:
    """`src` remuxed with the payload of each of its last `packets` packets cut to 20 bytes: they no longer decode,
    as a phone's cut-off last packet does."""
    import av

    with av.open(str(src)) as i, av.open(str(out), "w") as o:
        stream = o.add_stream_from_template(i.streams.video[0])
        kept = [p for p in i.demux(i.streams.video[0]) if p.size]
        for j, p in enumerate(kept):
            if j >= len(kept) - packets:
                cut = av.Packet(bytes(p)[:20])
                cut.pts, cut.dts, cut.time_base = p.pts, p.dts, p.time_base
                p = cut
            p.stream = stream
            o.mux(p)
    return out

