"""Synthetic poses for the pose tests: a person standing with arms out, in pixel coordinates."""

from __future__ import annotations

import numpy as np

from vid2vid_app.pose import skeleton as sk


def standing_pose(width: int = 200, height: int = 300, conf: float = 0.9) -> np.ndarray:
    """(33, 3) float32: a figure centred in a width x height image, head near the top, feet near
    the bottom, arms stretched sideways and legs apart, so no two limbs overlap at their midpoints."""
    rel = {  # (x, y) as fractions of the image size
        sk.NOSE: (0.50, 0.12),
        sk.L_EYE_INNER: (0.52, 0.105), sk.L_EYE: (0.535, 0.10), sk.L_EYE_OUTER: (0.55, 0.10),
        sk.R_EYE_INNER: (0.48, 0.105), sk.R_EYE: (0.465, 0.10), sk.R_EYE_OUTER: (0.45, 0.10),
        sk.L_EAR: (0.58, 0.11), sk.R_EAR: (0.42, 0.11),
        sk.MOUTH_L: (0.52, 0.14), sk.MOUTH_R: (0.48, 0.14),
        sk.L_SHOULDER: (0.62, 0.25), sk.R_SHOULDER: (0.38, 0.25),
        sk.L_ELBOW: (0.78, 0.25), sk.R_ELBOW: (0.22, 0.25),
        sk.L_WRIST: (0.92, 0.25), sk.R_WRIST: (0.08, 0.25),
        sk.L_PINKY: (0.96, 0.27), sk.R_PINKY: (0.04, 0.27),
        sk.L_INDEX: (0.97, 0.25), sk.R_INDEX: (0.03, 0.25),
        sk.L_THUMB: (0.95, 0.23), sk.R_THUMB: (0.05, 0.23),
        sk.L_HIP: (0.58, 0.55), sk.R_HIP: (0.42, 0.55),
        sk.L_KNEE: (0.66, 0.72), sk.R_KNEE: (0.34, 0.72),
        sk.L_ANKLE: (0.72, 0.88), sk.R_ANKLE: (0.28, 0.88),
        sk.L_HEEL: (0.70, 0.91), sk.R_HEEL: (0.30, 0.91),
        sk.L_FOOT_INDEX: (0.80, 0.92), sk.R_FOOT_INDEX: (0.20, 0.92),
    }
    kp = np.zeros((sk.NUM_LANDMARKS, 3), dtype=np.float32)
    for idx, (x, y) in rel.items():
        kp[idx] = (x * width, y * height, conf)
    return kp


def mean_acceleration(seq, min_conf: float = 0.5) -> float:
    """Jitter of a PoseSequence: mean |x[t+1] - 2 x[t] + x[t-1]| (Euclidean, pixels per frame
    squared) over every landmark whose confidence is at least ``min_conf`` in all three frames.

    Returns NaN when no such triple exists.
    """
    kp = seq.keypoints.astype(np.float64)
    if len(kp) < 3:
        return float("nan")
    acc = kp[2:, :, :2] - 2 * kp[1:-1, :, :2] + kp[:-2, :, :2]
    ok = (kp[2:, :, 2] >= min_conf) & (kp[1:-1, :, 2] >= min_conf) & (kp[:-2, :, 2] >= min_conf)
    ok &= np.isfinite(acc).all(axis=2)
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(acc, axis=2)[ok].mean())
