"""The frames stage against the ffmpeg command line, side by side in one run.

    python benchmarks/frames.py [--seconds 60]

Generates a SECONDS-long 640x360 25 fps H.264 clip, then writes 240-row JPGs of every frame with
`ffmpeg -i CLIP -vf fps=25,scale=-2:240 -q:v 2 OUT/%06d.jpg` (the static ffmpeg of imageio-ffmpeg)
and with `pipeline.media.frames.extract_frames`, each twice, keeping the faster run, and prints frames/s
of each and their ratio. Then decord decoding and scaling to 240 rows alone (what the stage used
before), and the ceiling: the same chunks only decoded (no resize, no JPG), one process per core,
since both tools pay for the H.264 decoding.
"""
from __future__ import annotations

import argparse
import shutil
import os
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.media.frames import CHUNKS_PER_WORKER, extract_frames, plan_chunks
from pipeline.media.probe import probe, source_indices


def make_clip(path: Path, seconds: int) -> int:
    """A moving gradient with noise, so the encoder and decoder do real work; returns the frame count."""
    n = seconds * 25
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:360, 0:640]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.time_base = 640, 360, "yuv420p", Fraction(1, 25)
        for k in range(n):
            rgb = np.stack([(x + 4 * k) % 256, (y + 2 * k) % 256, (x + y) % 256], -1).astype(np.uint8)
            rgb = np.clip(rgb + rng.integers(0, 24, rgb.shape, dtype=np.uint8), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = k
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return n


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    seconds = parser.parse_args().seconds
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = make_clip(tmp / "clip.mp4", seconds)

        def cli() -> None:
            out = tmp / "ffmpeg"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            subprocess.run([ffmpeg, "-v", "error", "-i", str(tmp / "clip.mp4"), "-vf", "fps=25,scale=-2:240",
                            "-q:v", "2", str(out / "%06d.jpg")], check=True)
            assert len(list(out.glob("*.jpg"))) == n

        def ours() -> None:
            assert extract_frames(tmp / "clip.mp4", tmp / "ours", fps=25, short_side=240, jpg_quality=90) == n

        def decode_only() -> None:
            info = probe(tmp / "clip.mp4")
            chunks = plan_chunks(info, source_indices(info, 25), os.cpu_count() * CHUNKS_PER_WORKER)
            with ProcessPoolExecutor(os.cpu_count()) as pool:
                assert sum(pool.map(decode, [(tmp / "clip.mp4", c.first, c.ticks[0], len(c.ticks)) for c in chunks])) == n

        def decord_scaled() -> None:
            import decord

            reader = decord.VideoReader(str(tmp / "clip.mp4"), width=426, height=240)
            assert len(reader) == n
            for _ in range(n):
                reader.next()

        t_cli, t_ours, t_decode = best_of(2, cli), best_of(2, ours), best_of(2, decode_only)
        t_decord = best_of(2, decord_scaled)
    print(f"{n} frames of 640x360 -> 240 rows, {os.cpu_count()} cores")
    print(f"ffmpeg CLI          {n / t_cli:7.1f} frames/s ({t_cli:.2f} s)")
    print(f"extract_frames      {n / t_ours:7.1f} frames/s ({t_ours:.2f} s)")
    print(f"ratio               {t_cli / t_ours:7.2f}x")
    print(f"decord, to 240 rows {n / t_decord:7.1f} frames/s ({t_cli / t_decord:.2f}x ffmpeg; no JPG written)")
    print(f"decode-only ceiling {n / t_decode:7.1f} frames/s ({t_cli / t_decode:.2f}x ffmpeg)")


def decode(job: tuple[Path, int, int, int]) -> int:
    """Decode a chunk's `count` frames from the keyframe at or before `tick`, one thread; returns the count."""
    path, first, tick, count = job
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        if first:
            c.seek(tick, stream=s, backward=True)
        done = 0
        for f in c.decode(s):
            done += f.pts >= tick
            if done == count:
                return done
    return done


if __name__ == "__main__":
    main()
