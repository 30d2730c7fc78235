"""Write a video's frames at the pipeline fps as numbered JPGs, decoding on every core.

The video is cut at keyframes into chunks of about equal length; each chunk is decoded by a
process of its own (PyAV, from its keyframe on) and encoded straight from the YUV planes
(`pipeline.media.yuvjpeg`). Every source frame is decoded once, and each decoded frame is matched to
the frame `probe` found by its exact timestamp, so nothing is skipped or shown twice by accident.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.core.atomic import atomic_output
from pipeline.core.errors import BouldersegError
from pipeline.media.probe import FRAME_NAME, VideoInfo, manifest, output_size, probe, source_indices

MANIFEST = "manifest.json"
CHUNKS_PER_WORKER = 4  # more chunks than processes, so one long chunk does not leave the others idle


@dataclass(frozen=True)
class Chunk:
    """Source frames [first, first + len(ticks)); decoding starts at the keyframe `first`."""

    first: int
    ticks: tuple[int, ...]  # each frame's presentation timestamp, in container ticks
    outputs: tuple[tuple[int, ...], ...]  # the output frames that show each source frame (none, one or more)

    @property
    def n_outputs(self) -> int:
        return sum(map(len, self.outputs))


def plan_chunks(info: VideoInfo, wanted: np.ndarray, parts: int) -> list[Chunk]:
    """About `parts` chunks, each starting at a keyframe, covering the source frames up to the last one shown."""
    n = int(wanted[-1]) + 1
    target, cuts = -(-n // parts), [0]
    for k in info.keyframes:
        if k < n and k - cuts[-1] >= target:
            cuts.append(k)
    showing: list[list[int]] = [[] for _ in range(n)]
    for out_i, src in enumerate(wanted.tolist()):
        showing[src].append(out_i)
    return [Chunk(a, tuple(info.tick(k) for k in range(a, b)), tuple(map(tuple, showing[a:b])))
            for a, b in zip(cuts, cuts[1:] + [n])]


def write_chunk(video: Path, chunk: Chunk, out_dir: Path, size: tuple[int, int], quality: int, *,
                threads: int = 0) -> int:
    """Decode the chunk on `threads` decoder threads (0: FFmpeg's choice), check each frame's timestamp,
    and write the JPGs showing it; returns how many."""
    import av

    from pipeline.media.yuvjpeg import encode

    k = 0
    try:
        for seek in (True, False) if chunk.first else (False,):
            with av.open(str(video)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = threads
                if seek:
                    container.seek(chunk.ticks[0], stream=stream, backward=True)  # the keyframe at or before
                for frame in container.decode(stream):
                    if frame.pts is not None and frame.pts < chunk.ticks[0]:
                        continue
                    if frame.pts != chunk.ticks[k]:
                        if seek and k == 0:
                            break  # the index put us past the chunk: decode from the start instead
                        raise _damaged(video, chunk.first + k, f"timestamp {frame.pts}, expected {chunk.ticks[k]}")
                    if chunk.outputs[k]:
                        data = encode(frame, size, quality)
                        for out_i in chunk.outputs[k]:
                            (out_dir / FRAME_NAME.format(out_i)).write_bytes(data)
                    k += 1
                    if k == len(chunk.ticks):
                        return chunk.n_outputs
            if k:
                break
    except av.error.FFmpegError as e:
        raise _damaged(video, chunk.first + k, str(e)) from e
    raise _damaged(video, chunk.first + k, "decoding stopped there")


def _damaged(video: Path, frame: int, what: str) -> BouldersegError:
    return BouldersegError(f"{video}: source frame {frame} did not decode ({what}); the file is damaged or "
                           "truncated. Re-export it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) or remove it from videos.")


def _init_worker(stage: int) -> None:
    """One thread per worker process (together they fill the cores), and a watchdog that ends the worker
    as soon as the stage process is gone: its parent is the fork server, so no signal would say so, and
    it must not go on writing into a killed stage's temp folder, nor wait forever for work."""
    import cv2

    cv2.setNumThreads(1)

    def watch() -> None:
        while True:
            time.sleep(0.2)
            try:
                os.kill(stage, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _executor(workers: int) -> Executor:
    if workers == 1:
        return ThreadPoolExecutor(1)
    # Workers fork from a clean server process: forking the caller, which may have run OpenCV or torch
    # thread pools (a notebook, the tests), can leave a worker deadlocked on a lock held by a lost thread.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipeline.media.frames", "pipeline.media.yuvjpeg"])
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),))


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    *,
    fps: float,
    short_side: int | None = None,
    jpg_quality: int = 90,
    workers: int | None = None,
) -> int:
    """Write `out_dir/000000.jpg …`, one per output frame at `fps`, and `out_dir/manifest.json`; returns the count.

    Keyframe-aligned chunks are decoded on `workers` processes (None: one per core); each holds
    one frame at a time, so memory does not grow with the video. The processes start the way
    Python's `forkserver` does, so a script calling this with several workers needs the usual
    `if __name__ == "__main__":` guard.
    """
    video, out_dir = Path(video), Path(out_dir)
    info = probe(video)
    size = output_size(info, short_side)
    wanted = source_indices(info, fps)
    workers = workers or os.cpu_count() or 1
    chunks = plan_chunks(info, wanted, workers * CHUNKS_PER_WORKER)
    workers = min(workers, len(chunks))
    threads = 0 if workers == 1 else 1  # one process: the decoder's own threads use the cores
    with atomic_output(out_dir, directory=True) as tmp, _executor(workers) as pool:
        futures = [pool.submit(write_chunk, video, c, tmp, size, jpg_quality, threads=threads) for c in chunks]
        try:
            with tqdm(total=len(wanted), desc=f"frames {video.name}", unit="frame", disable=None) as bar:
                for fut in as_completed(futures):
                    bar.update(fut.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        summary = manifest(info, fps=fps, n_out=len(wanted), size=size, short_side=short_side)
        (tmp / MANIFEST).write_text(json.dumps(summary, indent=2) + "\n")
    return len(wanted)
