"""The body model: MediaPipe Pose's 33 landmarks, the limbs drawn between them, and BODY_25 order.

Every other module refers to landmarks through these names, never through bare numbers.

Two *virtual* points are derived from real landmarks where a skeleton needs them: ``NECK`` (the
midpoint of the shoulders) and ``MID_HIP`` (the midpoint of the hips). :func:`with_virtual_points`
appends them to a (33, 3) array as rows 33 and 34.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# --- MediaPipe Pose landmark indices (left/right are the person's own sides) -----------------
NOSE = 0
L_EYE_INNER = 1
L_EYE = 2
L_EYE_OUTER = 3
R_EYE_INNER = 4
R_EYE = 5
R_EYE_OUTER = 6
L_EAR = 7
R_EAR = 8
MOUTH_L = 9
MOUTH_R = 10
L_SHOULDER = 11
R_SHOULDER = 12
L_ELBOW = 13
R_ELBOW = 14
L_WRIST = 15
R_WRIST = 16
L_PINKY = 17
R_PINKY = 18
L_INDEX = 19
R_INDEX = 20
L_THUMB = 21
R_THUMB = 22
L_HIP = 23
R_HIP = 24
L_KNEE = 25
R_KNEE = 26
L_ANKLE = 27
R_ANKLE = 28
L_HEEL = 29
R_HEEL = 30
L_FOOT_INDEX = 31
R_FOOT_INDEX = 32

NUM_LANDMARKS = 33

LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)

# --- Virtual points (rows appended by with_virtual_points) ------------------------------------
NECK = 33
MID_HIP = 34
NUM_WITH_VIRTUAL = 35

# --- Landmark groups ---------------------------------------------------------------------------
FACE_POINTS: tuple[int, ...] = (NOSE, L_EYE_INNER, L_EYE, L_EYE_OUTER, R_EYE_INNER, R_EYE, R_EYE_OUTER,
                                L_EAR, R_EAR, MOUTH_L, MOUTH_R)
HAND_POINTS: tuple[int, ...] = (L_PINKY, R_PINKY, L_INDEX, R_INDEX, L_THUMB, R_THUMB)
ANKLES: tuple[int, int] = (L_ANKLE, R_ANKLE)


class Limb(NamedTuple):
    """A segment drawn from landmark ``a`` to landmark ``b`` in one fixed RGB colour."""

    a: int
    b: int
    color: tuple[int, int, int]


# Body and feet: 20 limbs, each with its own colour (an evenly spaced hue wheel, OpenPose-like),
# so a limb can be recognised by its colour alone in a stick-figure image.
BODY_LIMBS: tuple[Limb, ...] = (
    Limb(NECK, NOSE, (255, 0, 0)),
    Limb(NECK, R_SHOULDER, (255, 77, 0)),
    Limb(R_SHOULDER, R_ELBOW, (255, 153, 0)),
    Limb(R_ELBOW, R_WRIST, (255, 230, 0)),
    Limb(NECK, L_SHOULDER, (204, 255, 0)),
    Limb(L_SHOULDER, L_ELBOW, (128, 255, 0)),
    Limb(L_ELBOW, L_WRIST, (51, 255, 0)),
    Limb(NECK, MID_HIP, (0, 255, 26)),
    Limb(MID_HIP, R_HIP, (0, 255, 102)),
    Limb(R_HIP, R_KNEE, (0, 255, 179)),
    Limb(R_KNEE, R_ANKLE, (0, 255, 255)),
    Limb(MID_HIP, L_HIP, (0, 179, 255)),
    Limb(L_HIP, L_KNEE, (0, 102, 255)),
    Limb(L_KNEE, L_ANKLE, (0, 26, 255)),
    Limb(R_ANKLE, R_HEEL, (51, 0, 255)),
    Limb(R_HEEL, R_FOOT_INDEX, (128, 0, 255)),
    Limb(R_ANKLE, R_FOOT_INDEX, (204, 0, 255)),
    Limb(L_ANKLE, L_HEEL, (255, 0, 230)),
    Limb(L_HEEL, L_FOOT_INDEX, (255, 0, 153)),
    Limb(L_ANKLE, L_FOOT_INDEX, (255, 0, 77)),
)

# Face detail: eyes, ears and mouth in light tints (drawn thinner than the body).
FACE_LIMBS: tuple[Limb, ...] = (
    Limb(NOSE, R_EYE_INNER, (255, 255, 255)),
    Limb(R_EYE_INNER, R_EYE, (235, 235, 255)),
    Limb(R_EYE, R_EYE_OUTER, (215, 215, 255)),
    Limb(R_EYE_OUTER, R_EAR, (195, 195, 255)),
    Limb(NOSE, L_EYE_INNER, (255, 235, 235)),
    Limb(L_EYE_INNER, L_EYE, (255, 215, 215)),
    Limb(L_EYE, L_EYE_OUTER, (255, 195, 195)),
    Limb(L_EYE_OUTER, L_EAR, (255, 175, 175)),
    Limb(MOUTH_R, MOUTH_L, (255, 255, 160)),
)

# Hand detail: wrist to thumb / index / pinky and across the palm.
HAND_LIMBS: tuple[Limb, ...] = (
    Limb(R_WRIST, R_THUMB, (160, 255, 160)),
    Limb(R_WRIST, R_INDEX, (140, 235, 200)),
    Limb(R_WRIST, R_PINKY, (120, 215, 240)),
    Limb(R_INDEX, R_PINKY, (100, 195, 160)),
    Limb(L_WRIST, L_THUMB, (255, 160, 255)),
    Limb(L_WRIST, L_INDEX, (235, 140, 200)),
    Limb(L_WRIST, L_PINKY, (215, 120, 240)),
    Limb(L_INDEX, L_PINKY, (195, 100, 160)),
)

LIMBS: tuple[Limb, ...] = BODY_LIMBS + FACE_LIMBS + HAND_LIMBS

# --- OpenPose BODY_25 order, expressed with the names above ------------------------------------
# None marks a BODY_25 point MediaPipe does not have (small toes): exported as (0, 0, 0).
BODY25_SOURCES: tuple[int | None, ...] = (
    NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST, MID_HIP,
    R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR,
    L_FOOT_INDEX, None, L_HEEL, R_FOOT_INDEX, None, R_HEEL,
)
BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)


def _midpoint(kp: np.ndarray, a: int, b: int) -> np.ndarray:
    """(x, y, c) midpoint of two rows of ``kp`` (..., K, 3); confidence = the lower of the two."""
    xy = (kp[..., a, :2] + kp[..., b, :2]) / 2
    conf = np.minimum(kp[..., a, 2], kp[..., b, 2])
    return np.concatenate([xy, conf[..., None]], axis=-1)


def with_virtual_points(keypoints: np.ndarray) -> np.ndarray:
    """(..., 33, 3) -> (..., 35, 3): appends NECK (shoulder midpoint) and MID_HIP (hip midpoint).

    Each virtual point's confidence is the lower confidence of its two parents.
    """
    if keypoints.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"expected (..., {NUM_LANDMARKS}, 3) keypoints, got shape {keypoints.shape}")
    neck = _midpoint(keypoints, L_SHOULDER, R_SHOULDER)
    mid_hip = _midpoint(keypoints, L_HIP, R_HIP)
    return np.concatenate([keypoints, neck[..., None, :], mid_hip[..., None, :]], axis=-2).astype(
        keypoints.dtype, copy=False)
