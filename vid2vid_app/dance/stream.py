"""Source poses that stream into generation: `dance transfer` at the speed of its slowest stage.

Detecting the whole source before generating the first frame makes a transfer take as long as
its pose pass plus its generation pass. Here the detection runs in the background and every
frame goes on to rendering and generation soon after it is detected:

1. **Detection** starts first, in a background thread (and, for a source long enough to be cut
   into chunks, worker processes: :func:`~vid2vid_app.pose.parallel.stream_chunked`, the same
   chunks and numbers as the whole-clip pass).
2. **First look.** Normalisation maps the source's body statistics onto the target's, and those
   statistics describe all the source's frames. Meanwhile :func:`first_look_stats` detects a
   sample of :data:`FIRST_LOOK_FRAMES` frames (fewer for a short source) spread evenly over the
   range, each on its own (MediaPipe Pose in static mode: the statistics use only body points),
   and computes them from those. When the sample is not enough (fewer than 5 frames show nose and ankles) the
   statistics come from the whole clip, as with ``--whole-clip``, and generation waits for the
   whole detection.
3. **Clean-up** (:class:`~vid2vid_app.pose.stream.PoseCleaner`): gap filling (exact), smoothing
   with :data:`LOOKAHEAD_SECONDS` of look-ahead, holding the nearest pose over frames without one;
   then the frame is fitted into the target's frame and normalised
   (:class:`~vid2vid_app.pose.normalize.StreamNormalizer`).

What changes against the whole-clip pass (``--whole-clip``): the statistics (from the sample)
and, where a run of frames with a person goes on for more than the look-ahead, the One-Euro
smoothing (its backward pass starts at the look-ahead instead of at the run's end; measured
within 0.13 % of the frame height on the bundled and shared clips). Detection, gap filling, holding
and the frame count are the same; without normalisation and smoothing (or with a look-ahead
longer than the clip) the keypoints are bit for bit the whole-clip ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..imaging import keypoints_to_canvas, letterbox_geometry
from .backdrop import source_frames_at

# Frames of the first look (fewer for a short source). The statistics pick extremes (the closest
# ankle position, the tallest body near it), so a sample never matches all frames exactly;
# bench/first_look_stats.py compares 24 frames with the whole clip on bundled and shared footage.
FIRST_LOOK_FRAMES = 24
# How far the backward smoothing pass looks ahead (TransferOptions.smooth_lookahead's default):
# half a second keeps the streamed keypoints within 0.13 % of the frame height of the whole-clip
# ones on the bundled and shared clips (the filter forgets about 6x per second).
LOOKAHEAD_SECONDS = 0.5


def first_look_stats(source: Path, start: int, end: int, crop: tuple[int, int, int, int] | None,
                     region: tuple[int, int, int, int], target_size: tuple[int, int], fps: float,
                     max_side: int, count: int = FIRST_LOOK_FRAMES) -> tuple[Any, int]:
    """Body statistics (in the target frame's pixels, as :func:`~.transfer.to_target_poses`
    computes them) of a sample of the source frames ``[start, end)``, each detected on its own,
    and how many frames were looked at; the statistics are None when fewer than 5 of them show
    nose and both ankles. The sample is ``count`` frames spread evenly over the range, or a
    quarter of a short range's frames (at least 8), so that it never costs a large share of the
    whole detection. ``region`` (x, y, w, h) is the part of the frame used (``crop``, or the
    whole frame); frames are detected with their longer side at most ``max_side``."""
    from ..pose import compute_stats
    from ..pose.detector import detect_rows
    from ..pose.keypoints import PoseSequence

    n = end - start
    count = min(count, max(8, n // 4), n)
    indices = [start + (2 * i + 1) * n // (2 * count) for i in range(count)]
    size = region[2], region[3]
    rows = detect_rows(source_frames_at(source, indices, crop, max_side), size, static=True, landmarks="body")
    if not len(rows):
        return None, 0
    box = letterbox_geometry(*size, *target_size)
    try:
        return compute_stats(PoseSequence(keypoints_to_canvas(rows, box), target_size, fps)), len(rows)
    except UserError:
        return None, len(rows)


class SourceStream:
    """The source range's keypoints in the target video's pixels, one (K, 3) row per frame, made
    while the source is still being detected (see the module doc). Iterate it once.

    Detection starts when the object is made. Set the statistics with :meth:`use_stats` before
    iterating (with ``normalize``). :meth:`close` stops the detection (safe to call twice).
    After the iteration: ``cleaner.detected``, ``.interpolated``, ``.held`` count frames as
    :class:`~.transfer.SourcePoses` does, ``frames`` is how many came, ``ended`` when the
    detection ended (``time.perf_counter()``), ``truncated`` a note when the source ended early.
    """

    def __init__(self, source: Path, info: Any, start: int, end: int, region: tuple[int, int, int, int], *,
                 crop: tuple[int, int, int, int] | None, landmarks: str, workers: int | None, target_size,
                 normalize: bool, smooth_method: str | None, max_gap: int | None, max_side: int,
                 lookahead: float | None = LOOKAHEAD_SECONDS) -> None:
        from ..pose.detector import DetectionStats
        from ..pose.parallel import stream_chunked
        from ..pose.stream import PoseCleaner
        from ..video import FrameRange, ThreadedReader

        self.source, self.expected, self.fps = source, end - start, float(info.fps)
        self.size, self.target_size, self.normalize = (region[2], region[3]), tuple(target_size), normalize
        self.box = letterbox_geometry(*self.size, *self.target_size)
        self.range_note = f" (frames {start}-{end - 1})" if (start, end) != (0, info.frame_count) else ""
        self.detection = DetectionStats()
        frames = FrameRange(source, max_side=max_side, crop=crop, start=start, end=end)
        self._stop = threading.Event()
        rows = stream_chunked(frames, self.expected, self.fps, self.size, workers=workers, landmarks=landmarks,
                              stats=self.detection, stop=self._stop)
        # The detection never waits for generation: the queue holds every frame if need be.
        self._reader = ThreadedReader(self._detected(rows), maxsize=self.expected + 1).start()
        steps = None if lookahead is None else round(lookahead * self.fps)
        self.cleaner = PoseCleaner(landmarks, self.fps, self.size[1], max_gap=max_gap, smooth_method=smooth_method,
                                   lookahead=steps)
        self._normalizer = None
        self._target_stats = None
        self.frames = 0
        self.ended: float | None = None
        self.truncated: str | None = None

    # --- what generation needs to know -----------------------------------------------------------
    def __len__(self) -> int:
        return self.expected

    @property
    def detecting(self) -> bool:
        """True while the source is still being detected."""
        return self.ended is None

    @property
    def detect_processes(self) -> int:
        """Detectors busy now: one per chunk being detected (none once the detection is over)."""
        return max(1, self.detection.workers) if self.detecting else 0

    def use_stats(self, source_stats, target_stats) -> None:
        """Normalise with ``source_stats`` (from :func:`first_look_stats`; None: from the whole clip
        once it is detected) onto ``target_stats``."""
        from ..pose.normalize import StreamNormalizer

        self._target_stats = target_stats
        if source_stats is not None:
            self._normalizer = StreamNormalizer(source_stats, target_stats, self.target_size)

    # --- the stream --------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        from ..pose.stream import clean_stream

        whole_clip = self.normalize and self._normalizer is None
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        for cleaned, held in clean_stream(self._rows(), self.cleaner):
            if whole_clip:
                kept.append((cleaned, held))
            else:
                yield from self._to_target(held)
        self._check_found()
        if whole_clip:
            yield from self._whole_clip(kept)
        elif self._normalizer is not None:
            yield from self._normalizer.finish()

    def _detected(self, rows: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """``rows`` as the detection thread produces them; notes when the last one came."""
        yield from rows
        self.ended = time.perf_counter()

    def _rows(self) -> Iterator[np.ndarray]:
        """The detected rows; a note when the source ended before the range did."""
        for row in self._reader:
            self.frames += 1
            yield row
        if self.frames < self.expected:
            self.truncated = (f"{self.source} ended after {self.frames} of the expected {self.expected} frames "
                              f"(damaged or cut short); the output has {self.frames} frames.")

    def _check_found(self) -> None:
        """:class:`UserError` when nobody was detected in any frame (or no frame decoded)."""
        if self.frames == 0:
            raise UserError("there are no frames to detect poses in.")
        if self.cleaner.detected == 0:
            raise UserError(f"no person was detected in any of the {self.frames} frames of {self.source}"
                            f"{self.range_note}; motion transfer needs a source with a visible person.")

    def _to_target(self, held: np.ndarray) -> list[np.ndarray]:
        """One held row in the target frame's pixels (normalised: the rows now ready)."""
        fitted = keypoints_to_canvas(held, self.box)
        return self._normalizer.push(fitted) if self._normalizer is not None else [fitted]

    def _whole_clip(self, kept: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Keypoints normalised with statistics of all frames (when the first look found too few)."""
        from ..pose.keypoints import PoseSequence
        from .transfer import SourcePoses, to_target_poses

        cleaned = PoseSequence.from_packed(np.stack([c for c, _ in kept]), self.size, self.fps)
        poses = SourcePoses(sequence=cleaned, filled=np.stack([h for _, h in kept]), detected=self.cleaner.detected,
                            interpolated=self.cleaner.interpolated, held=self.cleaner.held)
        return to_target_poses(poses, self.target_size, self._target_stats, True, self.source)

    def close(self) -> None:
        """Stop the detection (its thread and worker processes)."""
        self._stop.set()
        self._reader.close()
