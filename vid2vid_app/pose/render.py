"""Stick-figure rendering: keypoints -> uint8 RGB image (the generator's pose input).

The same function draws the poses of the target video for training and the normalised source
poses for transfer, so both see identical drawings. Output is deterministic: OpenCV's
anti-aliased lines with fixed-point (sub-pixel) coordinates, fixed colours and a fixed order.

A holistic pose (145 points, :mod:`.parts`) is drawn like Everybody Dance Now's OpenPose figures:
the body limbs, then the face's jaw line, brows, nose, eyes, lips and pupils in thin pale lines,
and each hand's 20 bones in the OpenPose hand colours. A face or hand that was not found
(confidence below ``min_conf``) is left out and the body's own few face / hand points are drawn
in its place, as for a body-only pose (33 points), whose drawing is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import parts
from . import skeleton as sk

_SHIFT = 4  # sub-pixel bits for cv2 drawing: coordinates are rounded to 1/16 px, not to 1 px
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class RenderStyle:
    """How stick figures look.

    thickness_scale: body line width = round(thickness_scale * max(width, height) / 200),
        at least 1 px (3 px on a 512-wide canvas, 10 px at 1920).
    face, hands: also draw the face (eyes, ears, mouth; or the face-70 contours) and hand (thumb,
        index, pinky; or the 21-point hand bones) details.
    detail_scale: width of face and hand lines relative to body lines (at least 1 px).
    """

    thickness_scale: float = 1.0
    face: bool = True
    hands: bool = True
    detail_scale: float = 0.5

    def thickness(self, width: int, height: int) -> int:
        return max(1, round(self.thickness_scale * max(width, height) / 200))


def _line(canvas: np.ndarray, pts: np.ndarray, a: int, b: int, color, thickness: int) -> None:
    cv2.line(canvas, (int(pts[a, 0]), int(pts[a, 1])), (int(pts[b, 0]), int(pts[b, 1])), color, thickness,
             cv2.LINE_AA, _SHIFT)


def _fixed_point(points: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float points -> (N, 2) int64 cv2 fixed-point coordinates and (N,) finite mask.
    Far-away points are clipped so the coordinates fit in int32; cv2 clips lines itself."""
    finite = np.isfinite(points[:, :2]).all(axis=1)
    limit = 4 * max(w, h)
    return np.round(np.clip(np.nan_to_num(points[:, :2]), -limit, limit) * _ONE).astype(np.int64), finite


def _draw_face(canvas: np.ndarray, face: np.ndarray, thickness: int, min_conf: float) -> None:
    """Face-70 contours (jaw, brows, nose, eyes, lips) and the pupils as dots."""
    h, w = canvas.shape[:2]
    pts, finite = _fixed_point(face, w, h)
    ok = finite & (face[:, 2] >= min_conf)
    for _, segments, color in parts.FACE_FEATURES:
        for a, b in segments:
            if ok[a] and ok[b]:
                _line(canvas, pts, a, b, color, thickness)
    for i in (parts.RIGHT_PUPIL, parts.LEFT_PUPIL):
        if ok[i]:
            cv2.circle(canvas, (int(pts[i, 0]), int(pts[i, 1])), max(1, thickness) * _ONE, parts.PUPIL_COLOR,
                       -1, cv2.LINE_AA, _SHIFT)


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, thickness: int, min_conf: float) -> None:
    """The 20 bones of one hand (21, 3)."""
    h, w = canvas.shape[:2]
    pts, finite = _fixed_point(hand, w, h)
    ok = finite & (hand[:, 2] >= min_conf)
    for a, b, color in parts.HAND_BONES:
        if ok[a] and ok[b]:
            _line(canvas, pts, a, b, color, thickness)


def _shown(part: np.ndarray, min_conf: float) -> bool:
    """A face or hand is drawn when any of its points is confident and finite."""
    return bool(((part[:, 2] >= min_conf) & np.isfinite(part[:, :2]).all(axis=1)).any())


def _draw(canvas: np.ndarray, keypoints: np.ndarray, style: RenderStyle, min_conf: float) -> np.ndarray:
    """Draw ``keypoints`` (33, 3) or holistic (145, 3) onto ``canvas`` (H, W, 3) uint8 in place."""
    if keypoints.shape not in ((sk.NUM_LANDMARKS, 3), (parts.NUM_PACKED, 3)):
        raise ValueError(f"expected ({sk.NUM_LANDMARKS}, 3) or ({parts.NUM_PACKED}, 3) keypoints, "
                         f"got shape {keypoints.shape}")
    h, w = canvas.shape[:2]
    body_kp, face, hands = parts.unpack(np.asarray(keypoints, dtype=np.float64))
    full = sk.with_virtual_points(body_kp)
    pts, finite = _fixed_point(full, w, h)
    ok = (full[:, 2] >= min_conf) & finite

    body = style.thickness(w, h)
    detail = max(1, round(body * style.detail_scale))
    face_shown = face is not None and style.face and _shown(face, min_conf)
    hand_shown = [hands is not None and style.hands and _shown(hands[i], min_conf) for i in range(2)]
    coarse_hands = tuple(limb for limb in sk.HAND_LIMBS
                         if not hand_shown[parts.LEFT_HAND if sk.L_WRIST in limb[:2] else parts.RIGHT_HAND])
    groups = [(sk.BODY_LIMBS, body)]
    if style.hands:
        groups.append((coarse_hands, detail))
    if style.face and not face_shown:
        groups.append((sk.FACE_LIMBS, detail))
    for limbs, thickness in groups:
        for a, b, color in limbs:
            if ok[a] and ok[b]:
                _line(canvas, pts, a, b, color, thickness)
    for i in (parts.LEFT_HAND, parts.RIGHT_HAND):
        if hand_shown[i]:
            _draw_hand(canvas, hands[i], detail, min_conf)
    if face_shown:
        _draw_face(canvas, face, detail, min_conf)
    return canvas


def render_pose(keypoints: np.ndarray, width: int, height: int, style: RenderStyle = RenderStyle(),
                min_conf: float = 0.3) -> np.ndarray:
    """Stick figure of one pose on a black (height, width, 3) uint8 RGB canvas.

    keypoints: (33, 3) x px, y px, confidence, or a holistic (145, 3) pose. A limb is drawn when
    both of its ends have confidence >= ``min_conf`` and finite coordinates; a missing frame
    gives a black image.
    """
    canvas = np.zeros((int(height), int(width), 3), dtype=np.uint8)
    return _draw(canvas, keypoints, style, min_conf)


def render_overlay(frame: np.ndarray, keypoints: np.ndarray, style: RenderStyle = RenderStyle(),
                   min_conf: float = 0.3) -> np.ndarray:
    """The stick figure drawn over a copy of ``frame`` (uint8 (H, W, 3) RGB), for previews."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    return _draw(np.ascontiguousarray(frame).copy(), keypoints, style, min_conf)
