"""Face stage (Everybody Dance Now): a residual face generator, face boxes, crop and paste.

The body generator's output is refined in a square box around the nose: the face generator sees
cat(pose-image crop, generated crop) and adds a residual to the generated crop. Crops are resized to
a fixed size so a batch of different boxes stacks into one tensor.

Poses come as (33, 3) MediaPipe body landmarks or as holistic (145, 3) poses (body, then the
face-70 points at rows 33-102, then the hands; :mod:`vid2vid_app.pose.parts`). Where a holistic
pose has its face, the box is placed and sized from the face itself: centred on the middle of
the face-70 points and sized by the jaw's width, which follows the face better than the nose and
ears of the body model when the head turns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .generators import ResnetGenerator

# MediaPipe Pose landmark indices used here.
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 2, 5, 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
FACE_LANDMARKS = tuple(range(11))  # nose, eyes, ears, mouth corners
# Holistic poses: rows of the face-70 points, and the jaw's two ends (iBUG points 0 and 16).
FACE70_ROWS = slice(33, 103)
JAW_RIGHT, JAW_LEFT = 33 + 0, 33 + 16

# Head width relative to shoulder width, used when the ears are not both visible (side views).
HEAD_PER_SHOULDER = 0.4


class FaceResidualGenerator(ResnetGenerator):
    """Residual face generator: out = clamp(face + r, -1, 1), r = global-generator(x) in (-1, 1).

    Input x = cat(pose crop, generated face crop) of shape (N, in_channels, S, S) in [-1, 1], the
    generated crop being the LAST ``out_channels`` channels; output (N, out_channels, S, S) in [-1, 1].
    The body is a pix2pixHD global generator (the Everybody Dance Now face generator uses one with
    3 downsamplings and 5 blocks), so its keys are ``model.N``. Its last conv starts at zero, hence
    r = 0 and the stage begins as the identity on the generated face. stride = 2^n_downsample.
    """

    def __init__(self, in_channels: int = 6, out_channels: int = 3, ngf: int = 32, n_downsample: int = 3,
                 n_blocks: int = 5, norm: str = "instance"):
        if in_channels <= out_channels:
            raise ValueError(f"the face generator input holds pose channels and the {out_channels}-channel "
                             f"face crop, so in_channels must exceed {out_channels}, got {in_channels}")
        super().__init__(in_channels, out_channels, ngf, n_downsample, n_blocks, norm, always_bias=True)
        self.out_channels = out_channels
        last_conv = self.model[-2]
        last_conv.zero_init = True  # init_weights keeps it at zero
        torch.nn.init.zeros_(last_conv.weight)
        torch.nn.init.zeros_(last_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        face = x[:, -self.out_channels :]
        return (face + self.model(x)).clamp(-1.0, 1.0)


def _valid(kp: np.ndarray, idx: int, min_conf: float) -> bool:
    return bool(np.all(np.isfinite(kp[idx, :3])) and kp[idx, 2] >= min_conf)


def _face_points(kp: np.ndarray, min_conf: float) -> np.ndarray | None:
    """(N, 2) confident face-70 points of a holistic pose, or None (body-only pose, face not found)."""
    if kp.shape[0] < FACE70_ROWS.stop:
        return None
    face = kp[FACE70_ROWS]
    ok = (np.nan_to_num(face[:, 2]) >= min_conf) & np.isfinite(face[:, :2]).all(axis=1)
    return face[ok, :2] if ok.sum() >= 3 else None


def head_width(keypoints: np.ndarray, min_conf: float = 0.3) -> float | None:
    """Head width in pixels from one frame's keypoints ((33, 3), or a holistic (145, 3) pose): the
    jaw's width where the face-70 points are found, else the ear-to-ear distance; at least
    HEAD_PER_SHOULDER x the shoulder width (ears overlap in side views). None when nothing is seen."""
    kp = np.asarray(keypoints, dtype=np.float64)
    sizes = []
    if _face_points(kp, min_conf) is not None and _valid(kp, JAW_RIGHT, min_conf) and _valid(kp, JAW_LEFT, min_conf):
        sizes.append(float(np.linalg.norm(kp[JAW_LEFT, :2] - kp[JAW_RIGHT, :2])))
    elif _valid(kp, LEFT_EAR, min_conf) and _valid(kp, RIGHT_EAR, min_conf):
        sizes.append(float(np.linalg.norm(kp[LEFT_EAR, :2] - kp[RIGHT_EAR, :2])))
    if _valid(kp, LEFT_SHOULDER, min_conf) and _valid(kp, RIGHT_SHOULDER, min_conf):
        sizes.append(HEAD_PER_SHOULDER * float(np.linalg.norm(kp[LEFT_SHOULDER, :2] - kp[RIGHT_SHOULDER, :2])))
    sizes = [s for s in sizes if s > 0]
    return max(sizes) if sizes else None


def face_side(keypoints_seq: np.ndarray, box_frac: float = 2.0, min_conf: float = 0.3) -> int | None:
    """One box side (pixels) for a whole sequence (T, K, 3): box_frac x the median head width.

    A fixed side per video keeps the face crop's scale steady from frame to frame. None when no
    frame shows the head.
    """
    widths = [w for w in (head_width(k, min_conf) for k in np.asarray(keypoints_seq)) if w is not None]
    return max(1, round(box_frac * float(np.median(widths)))) if widths else None


def face_box(keypoints: np.ndarray, size: tuple[int, int], box_frac: float = 2.0, side: int | None = None,
             min_conf: float = 0.3) -> tuple[int, int, int, int] | None:
    """Square face box (x0, y0, x1, y1) in integer pixels (x1, y1 exclusive) for one frame.

    keypoints: (33, 3) MediaPipe landmarks as x, y in pixels and confidence, or a holistic (145, 3)
    pose; size: image (w, h). Centre: the middle of the face-70 points' bounding box where the
    holistic face is found, else the nose, else the mean of the confident face landmarks of the
    body model. Side: ``side`` when given (use
    :func:`face_side` for one side per video), else box_frac x :func:`head_width`. The box is
    shifted (not shrunk) to lie inside the image; it is shrunk only when the side exceeds the image.
    Returns None when the frame shows no face landmark or no head size can be measured.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    w, h = size
    face = _face_points(kp, min_conf)
    if face is not None:
        cx, cy = (face.min(axis=0) + face.max(axis=0)) / 2
    elif _valid(kp, NOSE, min_conf):
        cx, cy = kp[NOSE, :2]
    else:
        seen = [i for i in FACE_LANDMARKS if _valid(kp, i, min_conf)]
        if not seen:
            return None
        cx, cy = kp[seen, :2].mean(axis=0)
    if side is None:
        width = head_width(kp, min_conf)
        if width is None:
            return None
        side = max(1, round(box_frac * width))
    side = int(min(side, w, h))
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    return x0, y0, x0 + side, y0 + side


def _box_list(boxes: torch.Tensor | np.ndarray | Sequence, n: int) -> list[tuple[int, int, int, int]]:
    rows = boxes.tolist() if hasattr(boxes, "tolist") else [list(b) for b in boxes]
    if len(rows) != n or any(len(r) != 4 for r in rows):
        raise ValueError(f"expected {n} boxes of 4 values (x0, y0, x1, y1), got {rows}")
    return [tuple(int(v) for v in r) for r in rows]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w); antialiased when shrinking so small crops do not alias."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def crop_faces(images: torch.Tensor, boxes, out_size: int) -> torch.Tensor:
    """Cut each image's box and resize it to (out_size, out_size).

    images (N, C, H, W); boxes (N, 4) integer (x0, y0, x1, y1) inside the image (see face_box);
    returns (N, C, out_size, out_size). Differentiable with respect to ``images``.
    """
    crops = []
    for image, (x0, y0, x1, y1) in zip(images, _box_list(boxes, len(images)), strict=True):
        if not (0 <= x0 < x1 <= image.shape[-1] and 0 <= y0 < y1 <= image.shape[-2]):
            raise ValueError(f"face box {(x0, y0, x1, y1)} is outside the {tuple(image.shape[-2:])} image")
        crops.append(_resize(image[None, :, y0:y1, x0:x1], (out_size, out_size)))
    return torch.cat(crops, 0)


def paste_faces(images: torch.Tensor, faces: torch.Tensor, boxes) -> torch.Tensor:
    """Resize each face (N, C, S, S) back to its box and write it into a copy of ``images``.

    Returns a new (N, C, H, W) tensor; ``images`` is left untouched. Differentiable with respect to
    both ``images`` (outside the boxes) and ``faces``. crop_faces then paste_faces with S equal to
    the box side gives the input back exactly.
    """
    out = images.clone()
    for i, (x0, y0, x1, y1) in enumerate(_box_list(boxes, len(images))):
        out[i, :, y0:y1, x0:x1] = _resize(faces[i : i + 1], (y1 - y0, x1 - x0))[0]
    return out
