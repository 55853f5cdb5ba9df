"""Stick-figure rendering: keypoints -> uint8 RGB image (the generator's pose input).

The same function draws the poses of the target video for training and the normalised source
poses for transfer, so both see identical drawings. Output is deterministic: OpenCV's
anti-aliased lines with fixed-point (sub-pixel) coordinates, fixed colours and a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import skeleton as sk

_SHIFT = 4  # sub-pixel bits for cv2 drawing: coordinates are rounded to 1/16 px, not to 1 px
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class RenderStyle:
    """How stick figures look.

    thickness_scale: body line width = round(thickness_scale * max(width, height) / 200),
        at least 1 px (3 px on a 512-wide canvas, 10 px at 1920).
    face, hands: also draw the face (eyes, ears, mouth) and hand (thumb, index, pinky) details.
    detail_scale: width of face and hand lines relative to body lines.
    """

    thickness_scale: float = 1.0
    face: bool = True
    hands: bool = True
    detail_scale: float = 0.5

    def thickness(self, width: int, height: int) -> int:
        return max(1, round(self.thickness_scale * max(width, height) / 200))


def _draw(canvas: np.ndarray, keypoints: np.ndarray, style: RenderStyle, min_conf: float) -> np.ndarray:
    """Draw the limbs of ``keypoints`` (33, 3) onto ``canvas`` (H, W, 3) uint8 in place."""
    if keypoints.shape != (sk.NUM_LANDMARKS, 3):
        raise ValueError(f"expected ({sk.NUM_LANDMARKS}, 3) keypoints, got shape {keypoints.shape}")
    h, w = canvas.shape[:2]
    full = sk.with_virtual_points(np.asarray(keypoints, dtype=np.float64))
    ok = (full[:, 2] >= min_conf) & np.isfinite(full[:, :2]).all(axis=1)
    # Clip far-away points so the fixed-point coordinates fit in int32; cv2 clips lines itself.
    limit = 4 * max(w, h)
    pts = np.round(np.clip(np.nan_to_num(full[:, :2]), -limit, limit) * _ONE).astype(np.int64)

    body = style.thickness(w, h)
    detail = max(1, round(body * style.detail_scale))
    groups = [(sk.BODY_LIMBS, body)]
    if style.hands:
        groups.append((sk.HAND_LIMBS, detail))
    if style.face:
        groups.append((sk.FACE_LIMBS, detail))
    for limbs, thickness in groups:
        for a, b, color in limbs:
            if ok[a] and ok[b]:
                cv2.line(canvas, (int(pts[a, 0]), int(pts[a, 1])), (int(pts[b, 0]), int(pts[b, 1])),
                         color, thickness, cv2.LINE_AA, _SHIFT)
    return canvas


def render_pose(keypoints: np.ndarray, width: int, height: int, style: RenderStyle = RenderStyle(),
                min_conf: float = 0.3) -> np.ndarray:
    """Stick figure of one pose on a black (height, width, 3) uint8 RGB canvas.

    keypoints: (33, 3) x px, y px, confidence. A limb is drawn when both of its ends have
    confidence >= ``min_conf`` and finite coordinates; a missing frame gives a black image.
    """
    canvas = np.zeros((int(height), int(width), 3), dtype=np.uint8)
    return _draw(canvas, keypoints, style, min_conf)


def render_overlay(frame: np.ndarray, keypoints: np.ndarray, style: RenderStyle = RenderStyle(),
                   min_conf: float = 0.3) -> np.ndarray:
    """The stick figure drawn over a copy of ``frame`` (uint8 (H, W, 3) RGB), for previews."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    return _draw(np.ascontiguousarray(frame).copy(), keypoints, style, min_conf)
