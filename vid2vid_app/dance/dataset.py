"""Temporal pairs of (stick figure, frame) for motion-transfer training.

Each item is two consecutive frames t, t+1 of the prepared target data with their stick figures,
drawn on the fly at the stage's resolution with the same renderer used at transfer time::

    {"pose0", "pose1": float (3, H, W) in [-1, 1], stick figures at t and t+1,
     "frame0", "frame1": float (3, H, W) in [-1, 1], the real frames,
     "box0", "box1": float (4,) face boxes (x0, y0, x1, y1) in pixels (only with ``face_boxes``),
     "plate": float (3, H, W) in [-1, 1], the background plate of the pair's video, and
     "mask0", "mask1": float (1, H, W) in [0, 1], the person masks (only with ``layer``)}

The prepared frames are stored at the last stage's canvas; an earlier stage at half that size
(the global stage under a local enhancer) gets frames averaged over 2x2 blocks and keypoints
halved, so every stage sees the same geometry.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..imaging import to_tensor
from .prepare import PreparedData


def downscale_frame(frame: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H/factor, W/factor, 3) by averaging factor x factor blocks."""
    if factor == 1:
        return np.array(frame)  # a writable copy (the source may be a read-only memory map)
    h, w, c = frame.shape
    blocks = np.asarray(frame, dtype=np.float32).reshape(h // factor, factor, w // factor, factor, c)
    return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


def stage_plates(layer, factor: int) -> torch.Tensor:
    """The plates of ``layer`` (V, H, W, 3) uint8 at a stage ``factor`` times smaller ->
    float (V, 3, H / factor, W / factor) in [-1, 1]."""
    return torch.cat([to_tensor(downscale_frame(p, factor)) for p in layer.plates])


def stage_mask(mask: np.ndarray, factor: int) -> torch.Tensor:
    """uint8 (H, W) mask (255 = person) -> float (1, H / factor, W / factor) in [0, 1]."""
    small = downscale_frame(np.asarray(mask)[..., None], factor)[..., 0]
    return torch.from_numpy(small.astype(np.float32) / 255.0)[None]


class StagePoses:
    """Stick figures and face boxes of prepared data at one stage's resolution."""

    def __init__(self, data: PreparedData, factor: int, style):
        w, h = data.canvas
        if w % factor or h % factor:
            raise ValueError(f"canvas {w}x{h} is not divisible by {factor}")
        self.factor = factor
        self.size = (w // factor, h // factor)
        self.keypoints = data.canvas_keypoints.copy()
        self.keypoints[..., :2] /= factor
        self.style = style

    def render(self, t: int, offset: np.ndarray | None = None) -> np.ndarray:
        """uint8 (H, W, 3) stick figure of frame ``t``; ``offset`` (K, 2) pixels is added to the
        landmarks first (training-time jitter)."""
        from ..pose.render import render_pose

        kp = self.keypoints[t]
        if offset is not None:
            kp = kp.copy()
            kp[:, :2] += offset
        return render_pose(kp, self.size[0], self.size[1], self.style)

    def face_box(self, t: int, side: int | None = None) -> np.ndarray | None:
        """(4,) float32 face box (x0, y0, x1, y1) of frame ``t`` in this stage's pixels, or None when
        the frame shows no face. ``side``: a fixed box side at the full canvas (one per target, so
        the crop scale stays steady), scaled to this stage."""
        from ..models.face import face_box

        if side is not None:
            side = max(1, round(side / self.factor))
        box = face_box(self.keypoints[t], self.size, side=side)
        return None if box is None else np.asarray(box, dtype=np.float32)


class TemporalPairDataset(Dataset):
    """Pairs (t, t+1) for the given pair starts (see :meth:`PreparedData.split`).

    ``factor`` = canvas size / stage size (1 or 2). ``face_boxes`` adds "box0"/"box1" (boxes of
    side ``face_side``; give only pairs whose frames both show a face). ``layer`` (the
    :class:`~vid2vid_app.dance.layer.LayerData` of ``data``) adds the plate and the person masks.

    ``pose_jitter`` > 0 perturbs the stick figures (not the frames): one random shift of the whole
    figure shared by both frames, standard deviation ``pose_jitter`` x the stage's height, plus
    independent per-landmark noise of half that. With little data the generator otherwise ties
    every pixel, background included, to the exact training poses and breaks down on new ones.
    Random numbers come from numpy's global generator, which the training loop seeds per sample.
    """

    def __init__(self, data: PreparedData, pairs: np.ndarray, style, factor: int = 1,
                 face_boxes: bool = False, face_side: int | None = None, pose_jitter: float = 0.0,
                 layer=None):
        self.data = data
        self.layer = layer
        self.plates = None if layer is None else stage_plates(layer, factor)
        self._masks = None
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.poses = StagePoses(data, factor, style)
        self.face_boxes = face_boxes
        self.face_side = face_side
        self.pose_jitter = float(pose_jitter)
        self._frames = None  # opened lazily, so each DataLoader worker maps the file itself

    def __len__(self) -> int:
        return len(self.pairs)

    def frame(self, t: int) -> np.ndarray:
        """uint8 (H, W, 3) real frame ``t`` at the stage's resolution."""
        if self._frames is None:
            self._frames = self.data.frames
        return downscale_frame(self._frames[t], self.poses.factor)

    def mask(self, t: int) -> torch.Tensor:
        """float (1, H, W) person mask of frame ``t`` in [0, 1] at the stage's resolution."""
        if self._masks is None:
            self._masks = self.layer.masks
        return stage_mask(self._masks[t], self.poses.factor)

    def _jitter(self, shift: np.ndarray, sigma: float) -> np.ndarray:
        """(K, 2) training-time offsets: ``shift`` (1, 2) for the whole figure plus noise of
        sigma / 2 per body landmark. The face and each hand of a holistic pose move as one piece
        (one offset each), so their small shapes are not scrambled."""
        from ..pose import parts

        k = self.poses.keypoints.shape[1]
        noise = np.random.normal(0.0, sigma / 2, size=(k, 2))
        if k == parts.NUM_PACKED:
            for part in (slice(parts.FACE_START, parts.HANDS_START),
                         slice(parts.HANDS_START, parts.HANDS_START + parts.NUM_HAND),
                         slice(parts.HANDS_START + parts.NUM_HAND, parts.NUM_PACKED)):
                noise[part] = np.random.normal(0.0, sigma / 2, size=(1, 2))
        return shift + noise

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        t = int(self.pairs[i])
        offsets: list[np.ndarray | None] = [None, None]
        if self.pose_jitter > 0:
            sigma = self.pose_jitter * self.poses.size[1]
            shift = np.random.normal(0.0, sigma, size=(1, 2))
            offsets = [self._jitter(shift, sigma) for _ in range(2)]
        item = {
            "pose0": to_tensor(self.poses.render(t, offsets[0]))[0],
            "pose1": to_tensor(self.poses.render(t + 1, offsets[1]))[0],
            "frame0": to_tensor(self.frame(t))[0],
            "frame1": to_tensor(self.frame(t + 1))[0],
        }
        if self.layer is not None:
            item["plate"] = self.plates[int(self.data.segment[t])]
            item["mask0"], item["mask1"] = self.mask(t), self.mask(t + 1)
        if self.face_boxes:
            for key, frame in (("box0", t), ("box1", t + 1)):
                box = self.poses.face_box(frame, self.face_side)
                if box is None:
                    raise ValueError(f"frame {frame} shows no face; the face stage needs pairs with faces")
                item[key] = torch.from_numpy(box)
        return item

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_frames"] = None  # never pickle the memory map's contents
        state["_masks"] = None
        return state
