"""Pose detection with MediaPipe Pose or Holistic (the only module that imports mediapipe).

MediaPipe Pose finds one person per image: in tracking mode (videos) it locates a person once and
then follows the region of the previous frame's landmarks; in static mode (unrelated images) it
runs the person detector on every image.

``landmarks="holistic"`` runs MediaPipe Holistic instead (bundled in the mediapipe wheel): the
same 33 body landmarks, plus the face mesh and both hands, found in crops that the body landmarks
place. Results then hold 145 rows in the packed layout of :mod:`.parts` (body, face-70, left
hand, right hand). Holistic gives the face and hands no score, so their confidences are taken
from the body: a face gets the visibility of the body's nose, a hand that of its wrist (an
occluded wrist, e.g. behind the back, gives a low confidence and the hand is not drawn). A part
Holistic did not find gets confidence 0. One check rejects a face mesh that cannot belong to the
body: seen from behind, Holistic still fits a face to the back of the head, upside down
relative to the torso (its crop is turned by the body's eye line, which is reversed), so a face
whose chin-to-nose-root direction points more than about 72 degrees away from the body's
hip-to-neck direction (cosine below :data:`FACE_UPRIGHT_MIN_COS`) counts as not found.

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
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..progress import progress
from . import parts
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


class _StderrSilencer:
    """Process-wide: fd 2 goes to a temporary file while any thread is inside a silenced block (two
    detectors may start in two threads at once; fd 2 is shared by all of them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: int | None = None
        self.capture = None

    def enter(self) -> None:
        with self.lock:
            if self.depth == 0:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                self.saved, self.capture = os.dup(2), tempfile.TemporaryFile()
                os.dup2(self.capture.fileno(), 2)
            self.depth += 1

    def leave(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth:
                return
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.capture.seek(0)
            kept = b"".join(line for line in self.capture if not _NATIVE_CHATTER.match(line))
            self.capture.close()
            with contextlib.suppress(OSError):
                while kept:
                    kept = kept[os.write(2, kept):]


_SILENCER = _StderrSilencer()


@contextlib.contextmanager
def _native_stderr_silenced():
    """Drop MediaPipe's start-up chatter that native code writes to file descriptor 2 inside the block.

    MediaPipe prints several start-up warnings (TF Lite delegate, absl "log messages before
    InitializeLog", feedback tensors) straight to fd 2 when a graph is built and first run;
    the Python API offers no switch for them (GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL do not
    reach them). fd 2 goes to a temporary file inside the block (until the last thread inside
    such a block leaves it); afterwards every line that is not such chatter
    (:data:`_NATIVE_CHATTER`) is written to fd 2, so real errors still surface. Python's own
    stderr is flushed on entry and exit, so its text stays in order.
    """
    _SILENCER.enter()
    try:
        yield
    finally:
        _SILENCER.leave()


_TRACK_MIN_CONF = 0.5  # landmarks trusted to place a person's box
FACE_UPRIGHT_MIN_COS = 0.3  # face "up" vs torso "up" (see the module docstring)


def _box(kp: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of the confident body landmarks of one pose (K, 3); None if fewer than 4."""
    kp = kp[: sk.NUM_LANDMARKS]
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


def _landmark_array(landmarks, w: int, h: int, visibility: bool) -> np.ndarray:
    """MediaPipe landmark list -> float32 (N, 3): x, y in pixels and visibility (or 0)."""
    return np.array([(lm.x * w, lm.y * h, lm.visibility if visibility else 0.0) for lm in landmarks.landmark],
                    dtype=np.float32)


def _face_fits_body(mesh: np.ndarray, body: np.ndarray) -> bool:
    """True when the face mesh's up direction (chin -> nose root) agrees with the torso's
    (mid-hip -> neck) within the angle of :data:`FACE_UPRIGHT_MIN_COS`."""
    face_up = mesh[parts.MESH_NOSE_ROOT, :2] - mesh[parts.MESH_CHIN, :2]
    full = sk.with_virtual_points(body)
    torso_up = full[sk.NECK, :2] - full[sk.MID_HIP, :2]
    norm = float(np.linalg.norm(face_up) * np.linalg.norm(torso_up))
    return norm > 0 and float(face_up @ torso_up) / norm >= FACE_UPRIGHT_MIN_COS


def holistic_points(body: np.ndarray, mesh: np.ndarray | None, left: np.ndarray | None,
                    right: np.ndarray | None) -> np.ndarray:
    """Packed (145, 3) pose from Holistic's outputs, all in pixels: ``body`` (33, 3) with
    visibilities, the face ``mesh`` (468 or 478, 2+) and the ``left``/``right`` hands (21, 2+) of
    the person's own sides, each None when not found. Confidences as the module docstring says."""
    face = parts.missing((parts.NUM_FACE, 3))
    if mesh is not None and _face_fits_body(mesh, body):
        face[:, :2] = parts.face70_from_mesh(mesh[:, :2])
        face[:, 2] = body[sk.NOSE, 2]
    hands = parts.missing((2, parts.NUM_HAND, 3))
    for side, hand, wrist in ((parts.LEFT_HAND, left, sk.L_WRIST), (parts.RIGHT_HAND, right, sk.R_WRIST)):
        if hand is not None:
            hands[side, :, :2] = hand[:, :2]
            hands[side, :, 2] = body[wrist, 2]
    return parts.pack(body, face, hands)


class PoseDetector:
    """MediaPipe Pose (or Holistic) on uint8 RGB frames, returning keypoints in pixels:
    (33, 3) with ``landmarks="body"``, (145, 3) in the packed layout of :mod:`.parts` with
    ``landmarks="holistic"``.

    static_image_mode: True for unrelated images (detect every time), False for video frames
        (track the person from frame to frame, much faster and steadier).
    model_complexity: 1 (full, default). 0 (lite) and 2 (heavy) work only where MediaPipe can
        download their models: the mediapipe 0.10.21 wheel bundles only the full model.
    min_confidence: MediaPipe's detection and tracking thresholds.
    max_jump, lost_after: person-following rules (see the module docstring); video mode only.
    landmarks: "body" (MediaPipe Pose) or "holistic" (MediaPipe Holistic: also face and hands).
    """

    def __init__(self, static_image_mode: bool = False, model_complexity: int = 1,
                 min_confidence: float = 0.5, max_jump: float = 0.5, lost_after: int = 15,
                 landmarks: str = "body") -> None:
        import mediapipe as mp  # lazy: importing mediapipe takes a second and pulls in TF Lite

        if model_complexity not in (0, 1, 2):
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {model_complexity}")
        self.num_points = parts.points_for(landmarks)
        self.landmarks = landmarks
        self._mp_pose = mp.solutions.holistic if landmarks == "holistic" else mp.solutions.pose
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
        options = dict(static_image_mode=static, model_complexity=self.model_complexity, smooth_landmarks=True,
                       enable_segmentation=False, min_detection_confidence=self.min_confidence,
                       min_tracking_confidence=self.min_confidence)
        with _native_stderr_silenced():
            if self.landmarks == "holistic":
                # The refined mesh adds the iris centres (the pupils of face-70).
                graph = self._mp_pose.Holistic(refine_face_landmarks=True, **options)
            else:
                graph = self._mp_pose.Pose(**options)
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
        kp = _landmark_array(result.pose_landmarks, w, h, visibility=True)
        kp[:, 2] = np.clip(kp[:, 2], 0.0, 1.0)
        if self.landmarks == "holistic":
            found = [None if lms is None else _landmark_array(lms, w, h, visibility=False)
                     for lms in (result.face_landmarks, result.left_hand_landmarks, result.right_hand_landmarks)]
            kp = holistic_points(kp, *found)
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

        Returns float32 (K, 3), K = :attr:`num_points` (33, or 145 for holistic): x, y in pixels
        of an image of ``size`` = (width, height) — default the frame's own size; pass the original
        size when detecting on a downscaled copy — and confidence in [0, 1]. No person: NaN
        coordinates and confidence 0 (face and hands likewise where not found).
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
            return parts.missing((self.num_points, 3))
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
    # Holistic only: frames in which each part was found.
    face: int = 0
    left_hand: int = 0
    right_hand: int = 0
    workers: int = 1
    chunks: int = 1
    landmarks: str = "body"

    def count(self, seq: PoseSequence) -> None:
        """Fill the frame counts (and the landmark set) from a detected sequence."""
        self.landmarks = seq.landmarks
        self.frames = len(seq)
        self.detected = int(seq.valid.sum())
        found = seq.part_found()
        self.face, self.left_hand, self.right_hand = (int(found[k].sum()) if found else 0
                                                      for k in ("face", "left_hand", "right_hand"))

    def part_rates(self) -> str:
        """"face 80%, left hand 61%, right hand 55% of the frames with a person" (holistic)."""
        n = max(self.detected, 1)
        return (f"face {100 * self.face / n:.0f}%, left hand {100 * self.left_hand / n:.0f}%, "
                f"right hand {100 * self.right_hand / n:.0f}% of the frames with a person")


def iter_rows(frames: Iterable[np.ndarray], size: tuple[int, int], *, static: bool = False,
              landmarks: str = "body", model_complexity: int = 1, min_confidence: float = 0.5,
              track_box: tuple[float, float, float, float] | None = None, quiet: bool = True,
              total: int | None = None, stats: DetectionStats | None = None) -> Iterator[np.ndarray]:
    """The packed keypoints (K, 3) of each frame in turn (K = 33 or 145, see :class:`PoseDetector`),
    in pixels of an image of ``size``, each as soon as it is detected. ``track_box`` starts the
    person-following with that box (the person a previous part of the video followed). Adds
    re-detection counts to ``stats`` when the frames run out."""
    with PoseDetector(static_image_mode=static, model_complexity=model_complexity,
                      min_confidence=min_confidence, landmarks=landmarks) as det:
        if track_box is not None and det._track is not None:
            det._track.box = tuple(float(v) for v in track_box)
        for frame in progress(frames, total=total, desc="pose", unit="frame", quiet=quiet):
            yield det.detect(frame, size=size)
        if stats is not None:
            stats.redetections += det.redetections
            stats.switches_rejected += det._track.switches_rejected if det._track is not None else 0


def detect_rows(frames: Iterable[np.ndarray], size: tuple[int, int], *, landmarks: str = "body",
                **options) -> np.ndarray:
    """Packed keypoints (T, K, 3) of every frame: :func:`iter_rows` (same options) stacked."""
    rows = list(iter_rows(frames, size, landmarks=landmarks, **options))
    if not rows:
        return parts.missing((0, parts.points_for(landmarks), 3))
    return np.stack(rows)


def detect_sequence(frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], static: bool = False,
                    quiet: bool = True, total: int | None = None, model_complexity: int = 1,
                    min_confidence: float = 0.5, stats: DetectionStats | None = None,
                    landmarks: str = "body") -> PoseSequence:
    """Detect the followed person in every frame of ``frames`` (uint8 RGB, any size), in this
    process (:func:`vid2vid_app.pose.parallel.detect_chunked` spreads a video over processes).

    ``size`` = (width, height) of the original video: coordinates are returned in those pixels
    even when the frames were downscaled for speed. ``static=True`` treats frames as unrelated
    images. ``landmarks="holistic"`` adds face and hands. Shows a progress bar unless ``quiet``.
    Fills ``stats`` when given. Raises :class:`UserError` when ``frames`` is empty.
    """
    start = time.perf_counter()
    rows = detect_rows(frames, size, static=static, landmarks=landmarks, model_complexity=model_complexity,
                       min_confidence=min_confidence, quiet=quiet, total=total, stats=stats)
    if not len(rows):
        raise UserError("there are no frames to detect poses in.")
    seq = PoseSequence.from_packed(rows, size, fps)
    if stats is not None:
        stats.count(seq)
        stats.seconds = time.perf_counter() - start
    return seq


class PersonSegmenter:
    """MediaPipe Pose's person segmentation (``enable_segmentation=True``, the full model bundled
    in the wheel): a soft mask of the followed person per frame.

    ``static_image_mode`` as for :class:`PoseDetector` (False: video frames, the person is tracked
    and the mask smoothed over time). The mask covers the person the pose model follows (one
    person; other people count as background).
    """

    def __init__(self, static_image_mode: bool = False, min_confidence: float = 0.5) -> None:
        import mediapipe as mp

        options = dict(static_image_mode=static_image_mode, model_complexity=1, smooth_landmarks=True,
                       enable_segmentation=True, smooth_segmentation=not static_image_mode,
                       min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)
        with _native_stderr_silenced():
            self._graph = mp.solutions.pose.Pose(**options)
            self._graph.process(np.zeros((32, 32, 3), dtype=np.uint8))
        self._started = False

    def segment(self, frame_rgb: np.ndarray) -> np.ndarray:
        """float32 (H, W) mask in [0, 1] (1 = person) of a uint8 RGB (H, W, 3) frame; all zeros
        when nobody is found."""
        if self._graph is None:
            raise RuntimeError("PersonSegmenter is closed")
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB frame, got {frame_rgb.dtype} {frame_rgb.shape}")
        frame_rgb = np.ascontiguousarray(frame_rgb)
        if self._started:
            result = self._graph.process(frame_rgb)
        else:  # the landmark and segmentation models print their start-up chatter on first use
            with _native_stderr_silenced():
                result = self._graph.process(frame_rgb)
            self._started = result.pose_landmarks is not None
        mask = result.segmentation_mask
        if mask is None or result.pose_landmarks is None:
            return np.zeros(frame_rgb.shape[:2], np.float32)
        return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> PersonSegmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def segment_frames(frames: Iterable[np.ndarray], *, static: bool = False, quiet: bool = True,
                   total: int | None = None, desc: str = "person masks") -> Iterable[np.ndarray]:
    """Yield the person mask (float32 (H, W) in [0, 1]) of each uint8 RGB frame, in order."""
    with PersonSegmenter(static_image_mode=static) as seg:
        for frame in progress(frames, total=total, desc=desc, unit="frame", quiet=quiet):
            yield seg.segment(frame)
