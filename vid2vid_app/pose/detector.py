"""Pose detection with MediaPipe Pose (the only module that imports mediapipe).

MediaPipe Pose finds one person per image: in tracking mode (videos) it locates a person once and
then follows the region of the previous frame's landmarks; in static mode (unrelated images) it
runs the person detector on every image.

Following one person when several are visible
---------------------------------------------
Tracking mode keeps to the person it first found, which is the most confident detection: in
practice the largest, most central one. It can still switch to someone else after losing the
person (occlusion, leaving the frame). :class:`PoseDetector` therefore keeps a *track*: the box
and body height of the last accepted pose. A new pose whose centre jumps further than
``max_jump`` x body height (per frame elapsed) from the track is taken for a different person.
The detector then re-detects inside a crop around the tracked box (static mode) and accepts that
pose if it matches the track; otherwise the frame counts as a miss. After ``lost_after`` frames
without a match the track is dropped and whoever is found next starts a new one.

Confidence of a landmark = MediaPipe's *visibility* (the legacy solution API leaves *presence* at
0, so it cannot be used).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..progress import progress
from . import skeleton as sk
from .keypoints import PoseSequence

# MediaPipe's C++ core logs start-up chatter to stderr; keep only errors where it honours these
# (they must be set before the library is first imported, which PoseDetector does lazily).
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# MediaPipe's native start-up chatter: absl/glog INFO and WARNING lines ("I0000 ...", "W0000 ..."),
# TF Lite's "INFO: Created TensorFlow Lite XNNPACK delegate ..." and absl's note on logging before
# InitializeLog. Anything else (E/F-level native errors, Python text) is passed on.
_NATIVE_CHATTER = re.compile(rb"^(?:[IW]\d{4} |INFO: |WARNING: All log messages before absl::InitializeLog\(\))")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Drop MediaPipe's start-up chatter that native code writes to file descriptor 2 inside the block.

    MediaPipe prints several start-up warnings (TF Lite delegate, absl "log messages before
    InitializeLog", feedback tensors) straight to fd 2 when a graph is built and first run;
    the Python API offers no switch for them (GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL do not
    reach them). fd 2 goes to a temporary file inside the block; afterwards every line that is not
    such chatter (:data:`_NATIVE_CHATTER`) is written to fd 2, so real errors still surface.
    Python's own stderr is flushed on entry and exit, so its text stays in order.
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    capture = tempfile.TemporaryFile()
    try:
        os.dup2(capture.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        kept = b"".join(line for line in capture if not _NATIVE_CHATTER.match(line))
        capture.close()
        with contextlib.suppress(OSError):
            while kept:
                kept = kept[os.write(2, kept):]


_TRACK_MIN_CONF = 0.5  # landmarks trusted to place a person's box


def _missing() -> np.ndarray:
    kp = np.zeros((sk.NUM_LANDMARKS, 3), dtype=np.float32)
    kp[:, :2] = np.nan
    return kp


def _box(kp: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of the confident landmarks of one pose (33, 3); None if fewer than 4."""
    pts = kp[kp[:, 2] >= _TRACK_MIN_CONF, :2]
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < 4:
        return None
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


@dataclass
class _Track:
    """The person being followed: last accepted box and how many frames ago it was seen."""

    max_jump: float
    lost_after: int
    box: tuple[float, float, float, float] | None = None
    misses: int = 0
    switches_rejected: int = 0

    def matches(self, kp: np.ndarray) -> bool:
        """True when ``kp`` can be the tracked person (or nobody is tracked yet)."""
        if self.box is None:
            return True
        box = _box(kp)
        if box is None:
            return False
        x0, y0, x1, y1 = self.box
        height = max(y1 - y0, x1 - x0, 1.0)
        prev_c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        new_c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        allowed = self.max_jump * height * (1 + self.misses)
        return float(np.linalg.norm(new_c - prev_c)) <= allowed

    def accept(self, kp: np.ndarray) -> None:
        box = _box(kp)
        if box is not None:
            self.box = box
        self.misses = 0

    def miss(self) -> None:
        self.misses += 1
        if self.misses > self.lost_after:
            self.box = None
            self.misses = 0


class PoseDetector:
    """MediaPipe Pose on uint8 RGB frames, returning (33, 3) keypoints in pixels.

    static_image_mode: True for unrelated images (detect every time), False for video frames
        (track the person from frame to frame, much faster and steadier).
    model_complexity: 1 (full, default). 0 (lite) and 2 (heavy) work only where MediaPipe can
        download their models: the mediapipe 0.10.21 wheel bundles only the full model.
    min_confidence: MediaPipe's detection and tracking thresholds.
    max_jump, lost_after: person-following rules (see the module docstring); video mode only.
    """

    def __init__(self, static_image_mode: bool = False, model_complexity: int = 1,
                 min_confidence: float = 0.5, max_jump: float = 0.5, lost_after: int = 15) -> None:
        import mediapipe as mp  # lazy: importing mediapipe takes a second and pulls in TF Lite

        if model_complexity not in (0, 1, 2):
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {model_complexity}")
        self._mp_pose = mp.solutions.pose
        self._started: set[int] = set()
        self.static_image_mode = static_image_mode
        self.model_complexity = model_complexity
        self.min_confidence = min_confidence
        self._pose = self._new_graph(static_image_mode)
        self._crop_pose = None  # static graph for re-detection in a crop, made when first needed
        self._track = None if static_image_mode else _Track(max_jump, lost_after)
        self.redetections = 0

    def _new_graph(self, static: bool):
        # The graph starts its calculators (and their TF Lite interpreters) in background threads;
        # one blocking run on a tiny blank image waits for all of them, so their start-up messages
        # fall inside the silenced block. A blank image finds nobody and leaves no tracking state.
        with _native_stderr_silenced():
            graph = self._mp_pose.Pose(static_image_mode=static, model_complexity=self.model_complexity,
                                      smooth_landmarks=True, enable_segmentation=False,
                                      min_detection_confidence=self.min_confidence,
                                      min_tracking_confidence=self.min_confidence)
            graph.process(np.zeros((32, 32, 3), dtype=np.uint8))
        return graph

    # --- context manager ---------------------------------------------------------------------
    def close(self) -> None:
        for graph in (self._pose, self._crop_pose):
            if graph is not None:
                graph.close()
        self._pose = self._crop_pose = None

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- detection ---------------------------------------------------------------------------
    def _run(self, graph, image: np.ndarray) -> np.ndarray | None:
        """Landmarks of ``image`` in its own pixels, or None when no person is found."""
        if id(graph) in self._started:
            result = graph.process(image)
        else:
            # Native start-up messages come when a graph first runs and again when its landmark
            # model first loads, i.e. at the first frame with a person.
            with _native_stderr_silenced():
                result = graph.process(image)
            if result.pose_landmarks is not None:
                self._started.add(id(graph))
        if result.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        kp = np.array([(lm.x * w, lm.y * h, lm.visibility) for lm in result.pose_landmarks.landmark],
                      dtype=np.float32)
        kp[:, 2] = np.clip(kp[:, 2], 0.0, 1.0)
        return kp

    def _redetect_in_box(self, frame: np.ndarray) -> np.ndarray | None:
        """Static detection inside a crop around the tracked box (enlarged by half on each side)."""
        x0, y0, x1, y1 = self._track.box
        h, w = frame.shape[:2]
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = side * 0.75 + 8
        cx0, cy0 = max(0, int(cx - half)), max(0, int(cy - half))
        cx1, cy1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
        if cx1 - cx0 < 16 or cy1 - cy0 < 16:
            return None
        if self._crop_pose is None:
            self._crop_pose = self._new_graph(static=True)
        self.redetections += 1
        kp = self._run(self._crop_pose, np.ascontiguousarray(frame[cy0:cy1, cx0:cx1]))
        if kp is None:
            return None
        kp[:, 0] += cx0
        kp[:, 1] += cy0
        return kp

    def detect(self, frame_rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Keypoints of the followed person in one uint8 RGB (H, W, 3) frame.

        Returns float32 (33, 3): x, y in pixels of an image of ``size`` = (width, height) — default
        the frame's own size; pass the original size when detecting on a downscaled copy — and
        confidence in [0, 1]. No person: NaN coordinates and confidence 0.
        """
        if self._pose is None:
            raise RuntimeError("PoseDetector is closed")
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB frame, got {frame_rgb.dtype} {frame_rgb.shape}")
        frame_rgb = np.ascontiguousarray(frame_rgb)
        kp = self._run(self._pose, frame_rgb)
        if self._track is not None:
            if kp is not None and not self._track.matches(kp):
                self._track.switches_rejected += 1
                kp = self._redetect_in_box(frame_rgb) if self._track.box is not None else None
                if kp is not None and not self._track.matches(kp):
                    kp = None
            if kp is None:
                self._track.miss()
            else:
                self._track.accept(kp)
        if kp is None:
            return _missing()
        h, w = frame_rgb.shape[:2]
        if size is not None and (size[0], size[1]) != (w, h):
            kp[:, 0] *= size[0] / w
            kp[:, 1] *= size[1] / h
        return kp


@dataclass
class DetectionStats:
    """Timing and counts of one :func:`detect_sequence` call."""

    frames: int = 0
    detected: int = 0
    seconds: float = 0.0
    redetections: int = 0
    switches_rejected: int = 0


def detect_sequence(frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], static: bool = False,
                    quiet: bool = True, total: int | None = None, model_complexity: int = 1,
                    min_confidence: float = 0.5, stats: DetectionStats | None = None) -> PoseSequence:
    """Detect the followed person in every frame of ``frames`` (uint8 RGB, any size).

    ``size`` = (width, height) of the original video: coordinates are returned in those pixels
    even when the frames were downscaled for speed. ``static=True`` treats frames as unrelated
    images. Shows a progress bar unless ``quiet``. Fills ``stats`` when given.
    Raises :class:`UserError` when ``frames`` is empty.
    """
    rows = []
    start = time.perf_counter()
    with PoseDetector(static_image_mode=static, model_complexity=model_complexity,
                      min_confidence=min_confidence) as det:
        for frame in progress(frames, total=total, desc="pose", unit="frame", quiet=quiet):
            rows.append(det.detect(frame, size=size))
        if stats is not None:
            stats.redetections = det.redetections
            stats.switches_rejected = det._track.switches_rejected if det._track is not None else 0
    if not rows:
        raise UserError("there are no frames to detect poses in.")
    seq = PoseSequence(np.stack(rows), size, fps)
    if stats is not None:
        stats.frames = len(seq)
        stats.detected = int(seq.valid.sum())
        stats.seconds = time.perf_counter() - start
    return seq
