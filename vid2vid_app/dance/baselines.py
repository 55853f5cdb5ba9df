"""Baselines for ``dance evaluate``: what a model must beat to add anything, and person masks.

- **mean training frame**: every evaluation frame is the per-pixel mean of the training frames
  (a blurred average of the room and of where the person usually stands);
- **nearest training pose**: every evaluation frame is the training frame whose pose lies closest
  (mean distance of the body landmarks confident in both, in target-video pixels): a lookup that
  copies the right room and a similar, but not the same, person.

Both come from the run's prepared data beside the model file (``data/``), from the training
frames of the one target video whose mean frame best matches the evaluated frames (with several
target cameras a baseline from another camera would be a straw man); a model file moved away
from its run has no baselines. Images are uint8 (H, W, 3) at the model's canvas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MEAN_FRAMES = 400  # training frames averaged for the mean frame (spread evenly)
MIN_CONF = 0.5


@dataclass
class TrainingFrames:
    """The training part of a run's prepared data: ``frames`` (T, H, W, 3) uint8 memory map of
    all prepared frames, ``keypoints`` (T, K, 3) in target pixels, ``index`` the training frames
    (before the held-out part, with a person), ``masks`` (T, H, W) uint8 person masks or None."""

    frames: np.ndarray
    keypoints: np.ndarray
    index: np.ndarray
    masks: np.ndarray | None
    segment: np.ndarray | None = None  # (T,) the target video of each frame

    def videos(self) -> list[TrainingFrames]:
        """One :class:`TrainingFrames` per target video that has training frames."""
        if self.segment is None:
            return [self]
        parts = [self.index[self.segment[self.index] == v] for v in np.unique(self.segment[self.index])]
        return [TrainingFrames(self.frames, self.keypoints, part, self.masks, self.segment) for part in parts]


def training_frames(model: Any) -> TrainingFrames | None:
    """The prepared frames of ``model``'s run (see :mod:`vid2vid_app.dance.prepare`), or None when
    they are not beside the model file or do not match its canvas."""
    data = getattr(model, "data", None) or {}
    path = getattr(model, "path", None)
    if path is None or not data.get("frames_file"):
        return None
    root = Path(path).parent / str(data.get("dir", "data"))
    frames_file, poses_file = root / str(data["frames_file"]), root / "poses.npz"
    w, h = (int(v) for v in data.get("canvas", model.resolution))
    total = int(data.get("frames", 0))
    if (w, h) != tuple(model.resolution) or not frames_file.is_file() or not poses_file.is_file() \
            or frames_file.stat().st_size != total * w * h * 3:
        return None
    with np.load(poses_file) as z:
        keypoints = z["keypoints"].astype(np.float32)
        segment = z["segment"].astype(np.int64) if "segment" in z.files else None
    frames = np.memmap(frames_file, dtype=np.uint8, mode="r", shape=(total, h, w, 3))
    person = (np.nan_to_num(keypoints[:, :33, 2]) > 0).any(axis=1)
    cut = int(data.get("val_start", total))
    index = np.flatnonzero(person[:cut])
    masks_file = root / str(data.get("masks_file") or "")
    masks = (np.memmap(masks_file, dtype=np.uint8, mode="r", shape=(total, h, w))
             if data.get("masks_file") and masks_file.is_file() and masks_file.stat().st_size == total * w * h
             else None)
    return (TrainingFrames(frames=frames, keypoints=keypoints, index=index, masks=masks, segment=segment)
            if len(index) else None)


def mean_training_frame(train: TrainingFrames, max_frames: int = MEAN_FRAMES) -> np.ndarray:
    """uint8 (H, W, 3): the per-pixel mean of (at most ``max_frames``, evenly spread) training frames."""
    pick = train.index[np.unique(np.linspace(0, len(train.index) - 1, min(max_frames, len(train.index)))
                                 .round().astype(np.int64))]
    total = np.zeros(train.frames.shape[1:], np.float64)
    for t in pick:
        total += train.frames[int(t)]
    return np.round(total / len(pick)).astype(np.uint8)


def nearest_pose_index(train: TrainingFrames, keypoints: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(T,) for each pose of ``keypoints`` (T, K, 3) in target pixels the training frame (an index
    into the prepared frames) whose body pose is closest: the mean distance over the body
    landmarks confident in both; a pose sharing no confident landmark gets the first frame."""
    query = np.asarray(keypoints, dtype=np.float32)[:, :33]
    q_ok = np.nan_to_num(query[..., 2]) >= MIN_CONF  # (T, 33)
    best = np.full(len(query), np.inf)
    best_index = np.full(len(query), train.index[0], dtype=np.int64)
    for start in range(0, len(train.index), chunk):
        rows = train.index[start : start + chunk]
        ref = train.keypoints[rows, :33]  # (C, 33, 3)
        ok = q_ok[:, None] & (np.nan_to_num(ref[None, ..., 2]) >= MIN_CONF)  # (T, C, 33)
        diff = np.nan_to_num(query[:, None, :, :2] - ref[None, :, :, :2], nan=0.0)
        dist = np.where(ok, np.linalg.norm(diff, axis=-1), 0.0).sum(-1) / np.maximum(ok.sum(-1), 1)
        dist[ok.sum(-1) == 0] = np.inf
        col = dist.argmin(axis=1)
        value = dist[np.arange(len(query)), col]
        better = value < best
        best[better] = value[better]
        best_index[better] = rows[col[better]]
    return best_index


def segment_canvas_frames(frames: np.ndarray, quiet: bool = True) -> np.ndarray:
    """uint8 (T, H, W) person masks (255 = person) of consecutive uint8 frames (T, H, W, 3), from
    MediaPipe's segmentation (tracking mode; small frames are upscaled to 256 pixels first, the
    size the segmentation model works at)."""
    import cv2

    from ..pose.detector import segment_frames

    h, w = frames.shape[1:3]
    scale = max(1.0, 256 / max(h, w))
    size = (round(w * scale), round(h * scale))
    big = (cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) if scale > 1 else f for f in frames)
    out = [cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) if scale > 1 else m
           for m in segment_frames(big, quiet=quiet, total=len(frames), desc="person masks")]
    return np.round(np.stack(out) * 255).astype(np.uint8)
