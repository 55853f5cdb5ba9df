"""A pose pass that uses every core: a long video is cut into chunks, each detected by a worker
process, and the results are stitched back in order.

Pose detection is the slowest part of preparing a target and of transfer on a CPU, and one
MediaPipe graph keeps about one core busy. :func:`detect_chunked` therefore splits the frames
into ``workers`` chunks of equal length and runs one graph per chunk in its own process (spawned,
so no thread state of the caller is copied). Each worker decodes its own frames through a
picklable frame source (``source(first, end)`` yields frames ``[first, end)``, e.g.
:class:`vid2vid_app.video.FrameRange`), so decoding is spread over the cores too.

Chunks start early. In tracking mode MediaPipe needs a few frames to lock onto the person and
its landmark filter to settle; a chunk whose detector started exactly at its first frame would
show a jolt there. Every chunk after the first therefore starts :data:`WARMUP_SECONDS` earlier
(``first < start``); the results of those warm-up frames are discarded (the previous chunk's are
kept), so each frame is taken from a detector that has been running for a while.

Staying with one person. Each chunk's detector picks the person it finds first, which in a video
with several people may not be the one the previous chunk followed. The warm-up frames are seen
by both chunks, so the stitcher compares them: when the body boxes of the two chunks there lie
further apart than the detector's ``max_jump`` rule allows, the chunk is detected again, its
detector told to follow the previous chunk's person (:func:`~.detector.detect_rows`'s
``track_box``).

Videos shorter than :data:`MIN_CHUNK_SECONDS` per worker are not split (starting a worker costs
about two seconds); a video that fits in one chunk is detected in the calling process, exactly
as :func:`~.detector.detect_sequence` would.

Streaming. :func:`stream_chunked` yields the same rows one frame at a time, as soon as each is
known, for a consumer that works on the first frames while later ones are detected (`dance
transfer`): the first chunk is detected in the calling process, the others in workers meanwhile.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from ..progress import progress
from . import parts
from . import skeleton as sk
from .detector import DetectionStats, _box, detect_rows, iter_rows
from .keypoints import PoseSequence

WARMUP_SECONDS = 0.5
MIN_CHUNK_SECONDS = 4.0
MAX_JUMP = 0.5  # as PoseDetector's default: a centre further than this x body size is someone else
_WORKER_DIED = ("a pose detection worker process stopped unexpectedly (out of memory or killed); "
                "try fewer --workers.")

FrameSource = Callable[[int, int | None], Iterable[np.ndarray]]


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, end)`` kept from a detector run over ``[first, end)`` (``end`` None: to
    the end of the video)."""

    first: int
    start: int
    end: int | None


def plan_chunks(frame_count: int, fps: float, workers: int, *, min_chunk: int | None = None,
                warmup: int | None = None) -> list[Chunk]:
    """Split ``frame_count`` frames into at most ``workers`` chunks of at least ``min_chunk`` frames
    (default :data:`MIN_CHUNK_SECONDS` of frames), each after the first starting ``warmup`` frames
    early (default :data:`WARMUP_SECONDS`). The last chunk runs to the end of the video, whatever
    its header says."""
    warmup = max(1, round(WARMUP_SECONDS * fps)) if warmup is None else max(0, int(warmup))
    min_chunk = max(round(MIN_CHUNK_SECONDS * fps), 1) if min_chunk is None else max(1, int(min_chunk))
    n = max(1, min(int(workers), frame_count // min_chunk))
    bounds = [round(i * frame_count / n) for i in range(n + 1)]
    return [Chunk(max(0, s - warmup) if i else 0, s, e if i < n - 1 else None)
            for i, (s, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]


# --- worker side ------------------------------------------------------------------------------
_progress_queue = None


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def _counted(frames: Iterable[np.ndarray], every: int = 8) -> Iterator[np.ndarray]:
    """Pass frames on, telling the parent every ``every`` frames how many were taken."""
    n = 0
    for frame in frames:
        yield frame
        n += 1
        if n == every and _progress_queue is not None:
            _progress_queue.put(n)
            n = 0
    if n and _progress_queue is not None:
        _progress_queue.put(n)


def _detect_chunk(source: FrameSource, chunk: Chunk, size: tuple[int, int], options: dict[str, Any],
                  track_box) -> tuple[np.ndarray, int, int]:
    """Worker: packed rows of frames ``[chunk.first, chunk.end)``, re-detections, switches."""
    stats = DetectionStats()
    rows = detect_rows(_counted(source(chunk.first, chunk.end)), size, track_box=track_box, stats=stats, **options)
    return rows, stats.redetections, stats.switches_rejected


# --- parent side ------------------------------------------------------------------------------
def _same_person(prev: np.ndarray, new: np.ndarray) -> bool:
    """True unless the body boxes of two detections of the same frames (N, K, 3) lie further apart
    than :data:`MAX_JUMP` x the box size in most frames where both found a person."""
    far = []
    for a, b in zip(prev, new, strict=True):
        box_a, box_b = _box(a), _box(b)
        if box_a is None or box_b is None:
            continue
        size = max(box_a[2] - box_a[0], box_a[3] - box_a[1], 1.0)
        ca = np.array([box_a[0] + box_a[2], box_a[1] + box_a[3]]) / 2
        cb = np.array([box_b[0] + box_b[2], box_b[1] + box_b[3]]) / 2
        far.append(float(np.linalg.norm(ca - cb)) > MAX_JUMP * size)
    return not far or sum(far) * 2 <= len(far)


def _run_all(pool: ProcessPoolExecutor, tasks: dict[int, tuple], bar, progress_queue) -> dict[int, tuple]:
    """Submit ``tasks`` (index -> _detect_chunk arguments), feed the progress bar, return results."""
    futures: dict[Future, int] = {pool.submit(_detect_chunk, *args): i for i, args in tasks.items()}
    results = {}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        for future in done:
            results[futures[future]] = future.result()
        while True:
            try:
                bar.update(progress_queue.get_nowait())
            except queue.Empty:
                break
    return results


def detect_chunked(source: FrameSource, frame_count: int, fps: float, size: tuple[int, int], *,
                   workers: int | None = None, landmarks: str = "body", model_complexity: int = 1,
                   min_confidence: float = 0.5, quiet: bool = True, stats: DetectionStats | None = None,
                   min_chunk: int | None = None, warmup: int | None = None) -> PoseSequence:
    """Detect the followed person in every frame of a video, spread over ``workers`` processes
    (default: every core). ``source(first, end)`` yields the uint8 RGB frames ``[first, end)``
    (``end`` None: to the end) at any scale; ``frame_count`` is the expected number of frames;
    coordinates come back in pixels of ``size`` (width, height). ``min_chunk`` and ``warmup``
    (frames) override :func:`plan_chunks`'s defaults. Raises :class:`UserError` without frames.
    """
    started = time.perf_counter()
    workers = default_workers() if workers is None else max(1, int(workers))
    chunks = plan_chunks(frame_count, fps, workers, min_chunk=min_chunk, warmup=warmup)
    options = {"landmarks": landmarks, "model_complexity": model_complexity, "min_confidence": min_confidence}
    stats = stats if stats is not None else DetectionStats()
    if len(chunks) == 1:
        rows = detect_rows(source(0, None), size, quiet=quiet, total=frame_count, stats=stats, **options)
    else:
        rows = _detect_in_workers(source, chunks, frame_count, size, options, workers, quiet, stats)
    if not len(rows):
        raise UserError("there are no frames to detect poses in.")
    seq = PoseSequence.from_packed(rows, size, fps)
    stats.count(seq)
    stats.workers, stats.chunks = min(workers, len(chunks)), len(chunks)
    stats.seconds = time.perf_counter() - started
    return seq


def _detect_in_workers(source: FrameSource, chunks: list[Chunk], frame_count: int, size, options, workers: int,
                       quiet: bool, stats: DetectionStats) -> np.ndarray:
    """Run the chunks in worker processes and stitch them (see the module docstring)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    progress_queue = ctx.Queue()
    warm = sum(c.start - c.first for c in chunks)
    bar = progress(total=frame_count + warm, desc=f"pose ({len(chunks)} workers)", unit="frame", quiet=quiet)
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx,
                                 initializer=_init_worker, initargs=(progress_queue,)) as pool:
            tasks = {i: (source, c, size, options, None) for i, c in enumerate(chunks)}
            results = _run_all(pool, tasks, bar, progress_queue)
            kept = [results[0][0]]
            for i in range(1, len(chunks)):
                def again(box, i=i):
                    return _run_all(pool, {i: (source, chunks[i], size, options, box)}, bar, progress_queue)[i]

                kept_rows, redone = _stitched(kept, chunks[i], results[i][0], again)
                results[i] = redone or results[i]
                if kept_rows is None or not len(kept_rows):
                    break  # the video ended (or stopped decoding) before this chunk
                kept.append(kept_rows)
            for _, redetections, switches in results.values():
                stats.redetections += redetections
                stats.switches_rejected += switches
    except BrokenProcessPool:
        # A worker was killed (out of memory, a signal): one sentence instead of a traceback.
        raise UserError(_WORKER_DIED) from None
    finally:
        bar.close()
        progress_queue.close()
    return np.concatenate(kept) if kept else parts.missing((0, parts.points_for(options["landmarks"]), 3))


def _stitched(kept: list[np.ndarray], chunk: Chunk, rows: np.ndarray,
              again: Callable[[Any], tuple]) -> tuple[np.ndarray | None, tuple | None]:
    """The rows of ``chunk`` (detected as ``rows``) to append after the ``kept`` ones, and the new
    :func:`_detect_chunk` result when the chunk had followed someone else and ``again(box)`` had to
    detect it anew, following the person of ``box`` (None when it did not)."""
    kept_rows = _stitch(kept, chunk, rows)
    if kept_rows is not None:
        return kept_rows, None
    redone = again(_box(_last_person(kept)))  # after the person the previous chunks followed
    return _stitch(kept, chunk, redone[0], check=False), redone


def _last_person(kept: list[np.ndarray]) -> np.ndarray:
    """The last stitched frame with a person (or the last frame)."""
    rows = np.concatenate(kept)
    with_person = np.flatnonzero([_box(r) is not None for r in rows[-64:]])
    return rows[-64:][with_person[-1]] if len(with_person) else rows[-1]


def _stitch(kept: list[np.ndarray], chunk: Chunk, rows: np.ndarray, check: bool = True) -> np.ndarray | None:
    """The rows of ``chunk`` to append after the ``kept`` ones (warm-up dropped); None when the
    warm-up frames show another person than the previous chunk found there (``check``)."""
    done = sum(len(k) for k in kept)
    if done < chunk.start:  # an earlier chunk came up short: the video ends there
        return np.empty((0,) + rows.shape[1:], rows.dtype)
    overlap = chunk.start - chunk.first
    if check and overlap and len(rows) >= overlap:
        previous = np.concatenate(kept)[chunk.first : chunk.start]
        if not _same_person(previous[:, : sk.NUM_LANDMARKS], rows[:overlap, : sk.NUM_LANDMARKS]):
            return None
    return rows[overlap:]



# --- streaming --------------------------------------------------------------------------------
def stream_chunked(source: FrameSource, frame_count: int, fps: float, size: tuple[int, int], *,
                   workers: int | None = None, landmarks: str = "body", model_complexity: int = 1,
                   min_confidence: float = 0.5, stats: DetectionStats | None = None,
                   min_chunk: int | None = None, warmup: int | None = None,
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """The rows of :func:`detect_chunked` (same chunks, same numbers), one packed (K, 3) row per
    frame in order, each as soon as it is known, for a consumer that starts on the first frames
    while the rest is detected (run the iterator in a background thread).

    The first chunk is detected in this process and its rows are yielded one by one; the other
    chunks run meanwhile in ``min(workers, chunks) - 1`` worker processes and follow, stitched as
    :func:`detect_chunked` stitches them, once each is done. Closing the iterator early, or
    setting ``stop`` while it waits for a worker, ends it and stops the worker processes. No
    progress bar (the consumer shows its own).
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    chunks = plan_chunks(frame_count, fps, workers, min_chunk=min_chunk, warmup=warmup)
    options = {"landmarks": landmarks, "model_complexity": model_complexity, "min_confidence": min_confidence}
    stats = stats if stats is not None else DetectionStats()
    stats.workers, stats.chunks = min(workers, len(chunks)), len(chunks)
    if len(chunks) == 1:
        yield from iter_rows(source(0, None), size, stats=stats, **options)
        return
    import multiprocessing

    pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)) - 1, mp_context=multiprocessing.get_context("spawn"))
    finished = False
    try:
        pending = {i: pool.submit(_detect_chunk, source, c, size, options, None) for i, c in enumerate(chunks) if i}
        first = []
        for row in iter_rows(source(0, chunks[0].end), size, stats=stats, **options):
            first.append(row)
            yield row
        kept = [np.stack(first)] if first else []
        for i in range(1, len(chunks)):
            if not kept:
                break
            def again(box, i=i):
                return _result(pool.submit(_detect_chunk, source, chunks[i], size, options, box), stop)

            try:
                result = _result(pending[i], stop)
                kept_rows, redone = _stitched(kept, chunks[i], result[0], again)
            except _Stopped:
                return
            for _, redetections, switches in [result] + ([redone] if redone else []):
                stats.redetections += redetections
                stats.switches_rejected += switches
            if kept_rows is None or not len(kept_rows):
                break  # the video ended (or stopped decoding) before this chunk
            kept.append(kept_rows)
            yield from kept_rows
        finished = True
    finally:
        if finished:
            pool.shutdown()
        else:
            _stop(pool)


class _Stopped(Exception):
    """The consumer of :func:`stream_chunked` asked it to stop while it waited for a worker."""


def _result(future: Future, stop: threading.Event | None = None) -> tuple:
    """A worker's :func:`_detect_chunk` result; :class:`_Stopped` once ``stop`` is set, one
    sentence when the worker died."""
    try:
        while True:
            try:
                return future.result(timeout=0.1)
            except FutureTimeout:
                if stop is not None and stop.is_set():
                    raise _Stopped from None
    except BrokenProcessPool:
        raise UserError(_WORKER_DIED) from None


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut ``pool`` down now: queued chunks are cancelled and running workers terminated (a
    consumer that stopped early needs none of their rows)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    # Before 3.14 the executor has no public way to stop a running task; its process table is the
    # only handle on the workers.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
