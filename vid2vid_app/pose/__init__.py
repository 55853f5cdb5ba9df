"""Pose pipeline: detection, keypoint sequences, gap filling and smoothing, global normalisation,
stick-figure rendering. Knows nothing of torch; only ``detector`` imports mediapipe (lazily).

    frames --PoseDetector / detect_sequence--> PoseSequence (T, 33, 3)
           --fill_gaps, smooth--> --compute_stats / normalize--> --render_pose--> uint8 images

With ``landmarks="holistic"`` (MediaPipe Holistic) a PoseSequence also holds the face (T, 70, 3,
OpenPose face-70 order) and both hands (T, 2, 21, 3); :mod:`.parts` defines them and the packed
(T, 145, 3) layout. :mod:`.parallel` spreads a video's detection over worker processes;
:mod:`.stream` cleans up keypoints that arrive one frame at a time.
"""

from . import skeleton
from .detector import DetectionStats, PoseDetector, detect_sequence
from .keypoints import PoseSequence
from .normalize import BodyStats, compute_stats, normalize
from .render import RenderStyle, render_overlay, render_pose
from .smoothing import GapReport, fill_gaps, smooth

__all__ = [
    "BodyStats", "DetectionStats", "GapReport", "PoseDetector", "PoseSequence", "RenderStyle",
    "compute_stats", "detect_sequence", "fill_gaps", "normalize", "render_overlay",
    "render_pose", "skeleton", "smooth",
]
