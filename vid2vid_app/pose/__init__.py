"""Pose pipeline: detection, keypoint sequences, gap filling and smoothing, global normalisation,
stick-figure rendering. Knows nothing of torch; only ``detector`` imports mediapipe (lazily).

    frames --PoseDetector / detect_sequence--> PoseSequence (T, 33, 3)
           --fill_gaps, smooth--> --compute_stats / normalize--> --render_pose--> uint8 images
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
