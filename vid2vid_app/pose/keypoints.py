"""The keypoint-sequence type: (T, 33, 3) landmarks with image size and frame rate.

Layout of ``keypoints[t, k]``: ``(x, y, confidence)`` with x, y in pixels of the image the
sequence belongs to (origin top-left, x right, y down) and confidence in [0, 1].

A frame with no detected person has confidence 0 on every landmark and **NaN** coordinates, so a
missing frame can never be mistaken for a person standing in the image corner. Within a detected
frame every landmark has finite coordinates (MediaPipe estimates hidden ones); a low confidence
says how much to trust them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path
from . import skeleton as sk

if TYPE_CHECKING:  # imaging imports torch; the pose package itself must not need it
    from ..imaging import Letterbox


@dataclass
class PoseSequence:
    """Landmarks of one person over T frames.

    keypoints: float32 (T, 33, 3) — x px, y px, confidence in [0, 1]; missing frames are NaN, NaN, 0.
    size: (width, height) of the image the coordinates refer to.
    fps: frames per second of the source (1.0 for a folder of still images is fine).
    """

    keypoints: np.ndarray
    size: tuple[int, int]
    fps: float

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (sk.NUM_LANDMARKS, 3):
            raise ValueError(f"keypoints must be (T, {sk.NUM_LANDMARKS}, 3), got shape {kp.shape}")
        self.keypoints = kp
        self.size = (int(self.size[0]), int(self.size[1]))
        self.fps = float(self.fps)

    # --- basic properties -----------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def valid(self) -> np.ndarray:
        """(T,) bool: frames where a person was detected (any landmark with confidence > 0 and
        finite coordinates)."""
        kp = self.keypoints
        return ((kp[:, :, 2] > 0) & np.isfinite(kp[:, :, 0]) & np.isfinite(kp[:, :, 1])).any(axis=1)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @classmethod
    def empty(cls, length: int, size: tuple[int, int], fps: float) -> PoseSequence:
        """A sequence of ``length`` missing frames (NaN coordinates, confidence 0)."""
        kp = np.zeros((length, sk.NUM_LANDMARKS, 3), dtype=np.float32)
        kp[:, :, :2] = np.nan
        return cls(kp, size, fps)

    def copy(self) -> PoseSequence:
        return PoseSequence(self.keypoints.copy(), self.size, self.fps)

    # --- geometry helpers -----------------------------------------------------------------
    def scaled(self, sx: float, sy: float | None = None) -> PoseSequence:
        """Coordinates (and size) multiplied by ``sx`` (and ``sy``, default ``sx``): e.g. to map
        keypoints of a full-resolution video onto a resized copy of it."""
        sy = sx if sy is None else sy
        kp = self.keypoints.copy()
        kp[:, :, 0] *= sx
        kp[:, :, 1] *= sy
        size = (max(1, round(self.size[0] * sx)), max(1, round(self.size[1] * sy)))
        return PoseSequence(kp, size, self.fps)

    def resized_to(self, size: tuple[int, int]) -> PoseSequence:
        """Coordinates mapped onto an image of ``size`` = (width, height) (independent x/y scale)."""
        out = self.scaled(size[0] / self.size[0], size[1] / self.size[1])
        out.size = (int(size[0]), int(size[1]))
        return out

    def letterboxed(self, box: Letterbox, canvas: tuple[int, int]) -> PoseSequence:
        """Coordinates mapped the way :func:`vid2vid_app.imaging.letterbox` mapped the frames:
        scaled by ``box.scale`` then offset by ``(box.x0, box.y0)``; ``canvas`` = (width, height)."""
        kp = self.keypoints.copy()
        kp[:, :, 0] = kp[:, :, 0] * box.scale + box.x0
        kp[:, :, 1] = kp[:, :, 1] * box.scale + box.y0
        return PoseSequence(kp, canvas, self.fps)

    # --- save / load ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write ``.npz`` with arrays ``keypoints`` (T, 33, 3) float32, ``fps`` () float64 and
        ``size`` (2,) int64 = (width, height), through a temp file + rename."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # a file object stops numpy from appending another ".npz"
                np.savez(f, keypoints=self.keypoints, fps=np.float64(self.fps),
                         size=np.asarray(self.size, dtype=np.int64))

    @classmethod
    def load(cls, path: str | os.PathLike) -> PoseSequence:
        """Read a file written by :meth:`save`; :class:`UserError` when it is missing or not one."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path} does not exist.")
        try:
            with np.load(path, allow_pickle=False) as data:
                kp = data["keypoints"]
                fps = float(data["fps"])
                size = tuple(int(v) for v in data["size"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path} is not a keypoints file (.npz with keypoints, fps, size): {exc}.") from None
        if kp.ndim != 3 or kp.shape[1:] != (sk.NUM_LANDMARKS, 3) or len(size) != 2:
            raise UserError(f"{path} holds keypoints of shape {kp.shape}; expected (T, {sk.NUM_LANDMARKS}, 3).")
        return cls(kp, size, fps)

    # --- OpenPose export ------------------------------------------------------------------
    def to_body25(self) -> np.ndarray:
        """(T, 25, 3) in OpenPose BODY_25 order: neck = shoulder midpoint, mid-hip = hip midpoint.

        OpenPose's convention for an undetected point is (0, 0, 0): missing frames, points
        MediaPipe lacks (small toes) and NaNs all become zeros.
        """
        full = sk.with_virtual_points(self.keypoints)
        out = np.zeros((len(self), 25, 3), dtype=np.float32)
        for j, src in enumerate(sk.BODY25_SOURCES):
            if src is not None:
                out[:, j] = full[:, src]
        missing = ~np.isfinite(out).all(axis=2) | (out[:, :, 2] <= 0)
        out[missing] = 0.0
        return out

    def to_openpose_json(self, out_dir: str | os.PathLike, stem: str = "frame", overwrite: bool = False,
                         names: list[str] | None = None) -> list[Path]:
        """Write one OpenPose-style ``<stem>_<frame:012d>_keypoints.json`` per frame into ``out_dir``
        (OpenPose's naming for videos), or ``<names[t]>_keypoints.json`` when ``names`` is given
        (its naming for a folder of images).

        Schema as OpenPose writes it: ``{"version": 1.3, "people": [{"person_id": [-1],
        "pose_keypoints_2d": [x, y, c] * 25, "face_keypoints_2d": [], ...}]}``; a frame with no
        person has ``"people": []``. The folder is filled under a temporary name and renamed into
        place when complete. Returns the written paths.
        """
        out_dir = Path(out_dir)
        if out_dir.exists() and not overwrite:
            raise UserError(f"{out_dir} already exists; pass --overwrite to replace it.")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the result is an ordinary output folder
        try:
            if names is not None and len(names) != len(self):
                raise ValueError(f"{len(names)} names for {len(self)} frames")
            body = self.to_body25()
            valid = self.valid
            written = []
            for t in range(len(self)):
                people = []
                if valid[t]:
                    people.append({
                        "person_id": [-1],
                        "pose_keypoints_2d": [round(float(v), 3) for v in body[t].reshape(-1)],
                        "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
                        "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
                        "hand_right_keypoints_3d": [],
                    })
                name = f"{names[t]}_keypoints.json" if names is not None else f"{stem}_{t:012d}_keypoints.json"
                (tmp / name).write_text(json.dumps({"version": 1.3, "people": people}))
                written.append(name)
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return [out_dir / n for n in written]
