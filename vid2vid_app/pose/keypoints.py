"""The keypoint-sequence type: (T, 33, 3) body landmarks, optionally face (T, 70, 3) and hands
(T, 2, 21, 3) (see :mod:`.parts`), with image size and frame rate.

Layout of ``keypoints[t, k]``: ``(x, y, confidence)`` with x, y in pixels of the image the
sequence belongs to (origin top-left, x right, y down) and confidence in [0, 1].

A frame with no detected person has confidence 0 on every landmark and **NaN** coordinates, so a
missing frame can never be mistaken for a person standing in the image corner. Within a detected
frame every landmark has finite coordinates (MediaPipe estimates hidden ones); a low confidence
says how much to trust them. Face and hands follow the same rule per part: a part that was not
found in a frame has NaN coordinates and confidence 0 there, while the frame itself (and its
body) stays.

A sequence detected with body landmarks only has ``face = hands = None`` (and old files load
that way); a holistic one has both arrays, even when a part is never found.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path
from . import parts
from . import skeleton as sk


@dataclass
class PoseSequence:
    """Landmarks of one person over T frames.

    keypoints: float32 (T, 33, 3) — x px, y px, confidence in [0, 1]; missing frames are NaN, NaN, 0.
    size: (width, height) of the image the coordinates refer to.
    fps: frames per second of the source (1.0 for a folder of still images is fine).
    face: None (body-only detection) or float32 (T, 70, 3) in OpenPose face-70 order.
    hands: None or float32 (T, 2, 21, 3), index 0 the person's left hand, 1 the right.
    face and hands are given together or not at all (one alone is completed as "never found").
    """

    keypoints: np.ndarray
    size: tuple[int, int]
    fps: float
    face: np.ndarray | None = None
    hands: np.ndarray | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (sk.NUM_LANDMARKS, 3):
            raise ValueError(f"keypoints must be (T, {sk.NUM_LANDMARKS}, 3), got shape {kp.shape}")
        self.keypoints = kp
        self.size = (int(self.size[0]), int(self.size[1]))
        self.fps = float(self.fps)
        if self.face is not None or self.hands is not None:
            t = len(kp)
            face = parts.missing((t, parts.NUM_FACE, 3)) if self.face is None else self.face
            hands = parts.missing((t, 2, parts.NUM_HAND, 3)) if self.hands is None else self.hands
            self.face = np.asarray(face, dtype=np.float32)
            self.hands = np.asarray(hands, dtype=np.float32)
            if self.face.shape != (t, parts.NUM_FACE, 3):
                raise ValueError(f"face must be ({t}, {parts.NUM_FACE}, 3), got shape {self.face.shape}")
            if self.hands.shape != (t, 2, parts.NUM_HAND, 3):
                raise ValueError(f"hands must be ({t}, 2, {parts.NUM_HAND}, 3), got shape {self.hands.shape}")

    # --- parts ------------------------------------------------------------------------------
    @property
    def landmarks(self) -> str:
        """"holistic" when the sequence carries face and hands, else "body"."""
        return "body" if self.face is None else "holistic"

    def packed(self) -> np.ndarray:
        """All points as one array: (T, 33, 3) for a body-only sequence, (T, 145, 3) for a holistic
        one (body, face, left hand, right hand; see :mod:`.parts`). A new array."""
        return np.array(parts.pack(self.keypoints, self.face, self.hands), dtype=np.float32, copy=True)

    @classmethod
    def from_packed(cls, packed: np.ndarray, size: tuple[int, int], fps: float) -> PoseSequence:
        """The inverse of :meth:`packed`: (T, 33, 3) or (T, 145, 3) -> a sequence."""
        body, face, hands = parts.unpack(np.asarray(packed, dtype=np.float32))
        return cls(np.array(body), size, fps,
                   None if face is None else np.array(face), None if hands is None else np.array(hands))

    def with_points(self, packed: np.ndarray, size: tuple[int, int] | None = None) -> PoseSequence:
        """A sequence of the same kind and fps with the points of ``packed`` (same layout as
        :meth:`packed`) and ``size`` (default: this one's)."""
        return PoseSequence.from_packed(packed, self.size if size is None else size, self.fps)

    def part_found(self) -> dict[str, np.ndarray]:
        """(T,) bool per part: "face", "left_hand", "right_hand" found in each frame (empty dict
        for a body-only sequence)."""
        if self.face is None:
            return {}
        return {"face": parts.found(self.face), "left_hand": parts.found(self.hands[:, parts.LEFT_HAND]),
                "right_hand": parts.found(self.hands[:, parts.RIGHT_HAND])}

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
    def empty(cls, length: int, size: tuple[int, int], fps: float, landmarks: str = "body") -> PoseSequence:
        """A sequence of ``length`` missing frames (NaN coordinates, confidence 0)."""
        return cls.from_packed(parts.missing((length, parts.points_for(landmarks), 3)), size, fps)

    def copy(self) -> PoseSequence:
        return self.with_points(self.packed())

    # --- geometry helpers -----------------------------------------------------------------
    def scaled(self, sx: float, sy: float | None = None) -> PoseSequence:
        """Coordinates (and size) multiplied by ``sx`` (and ``sy``, default ``sx``): e.g. to map
        keypoints of a full-resolution video onto a resized copy of it."""
        sy = sx if sy is None else sy
        kp = self.packed()
        kp[:, :, 0] *= sx
        kp[:, :, 1] *= sy
        size = (max(1, round(self.size[0] * sx)), max(1, round(self.size[1] * sy)))
        return self.with_points(kp, size)

    def resized_to(self, size: tuple[int, int]) -> PoseSequence:
        """Coordinates mapped onto an image of ``size`` = (width, height) (independent x/y scale)."""
        out = self.scaled(size[0] / self.size[0], size[1] / self.size[1])
        out.size = (int(size[0]), int(size[1]))
        return out

    # --- save / load ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write ``.npz`` with arrays ``keypoints`` (T, 33, 3) float32, ``fps`` () float64 and
        ``size`` (2,) int64 = (width, height), plus ``face`` (T, 70, 3) and ``hands``
        (T, 2, 21, 3) float32 for a holistic sequence, through a temp file + rename."""
        path = Path(path)
        arrays = {"keypoints": self.keypoints, "fps": np.float64(self.fps),
                  "size": np.asarray(self.size, dtype=np.int64)}
        if self.face is not None:
            arrays.update(face=self.face, hands=self.hands)
        # Built in memory (keypoint files are small), so a failed disk write cannot leave numpy's
        # zip writer half-open on a closed file; a buffer also stops numpy appending another ".npz".
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PoseSequence:
        """Read a file written by :meth:`save` (files without ``face`` and ``hands``, as older
        versions wrote them, give a body-only sequence); :class:`UserError` when it is missing or
        not one."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path} does not exist.")
        try:
            with np.load(path, allow_pickle=False) as data:
                kp = data["keypoints"]
                fps = float(data["fps"])
                size = tuple(int(v) for v in data["size"])
                face = data["face"] if "face" in data.files else None
                hands = data["hands"] if "hands" in data.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path} is not a keypoints file (.npz with keypoints, fps, size): {exc}.") from None
        if kp.ndim != 3 or kp.shape[1:] != (sk.NUM_LANDMARKS, 3) or len(size) != 2:
            raise UserError(f"{path} holds keypoints of shape {kp.shape}; expected (T, {sk.NUM_LANDMARKS}, 3).")
        t = len(kp)
        if (face is None) != (hands is None) or (face is not None and (
                face.shape != (t, parts.NUM_FACE, 3) or hands.shape != (t, 2, parts.NUM_HAND, 3))):
            raise UserError(f"{path} holds face/hands arrays that do not fit its {t} frames; expected face "
                            f"({t}, {parts.NUM_FACE}, 3) and hands ({t}, 2, {parts.NUM_HAND}, 3) together.")
        return cls(kp, size, fps, face, hands)

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
        return _openpose_zeros(out)

    def to_openpose_parts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Face (T, 70, 3) and hands (T, 2, 21, 3) with OpenPose's (0, 0, 0) for points not found;
        None for a body-only sequence."""
        if self.face is None:
            return None
        return _openpose_zeros(self.face.copy()), _openpose_zeros(self.hands.copy())

    def to_openpose_json(self, out_dir: str | os.PathLike, stem: str = "frame", overwrite: bool = False,
                         names: list[str] | None = None) -> list[Path]:
        """Write one OpenPose-style ``<stem>_<frame:012d>_keypoints.json`` per frame into ``out_dir``
        (OpenPose's naming for videos), or ``<names[t]>_keypoints.json`` when ``names`` is given
        (its naming for a folder of images).

        Schema as OpenPose writes it: ``{"version": 1.3, "people": [{"person_id": [-1],
        "pose_keypoints_2d": [x, y, c] * 25, "face_keypoints_2d": [], ...}]}``; a frame with no
        person has ``"people": []``. A holistic sequence fills ``face_keypoints_2d`` (70 points,
        210 numbers) and ``hand_left/right_keypoints_2d`` (21 points, 63 numbers each), with
        (0, 0, 0) for the points of a part not found in that frame. The folder is filled under a temporary name and renamed into
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
            details = self.to_openpose_parts()
            valid = self.valid
            written = []
            for t in range(len(self)):
                people = []
                if valid[t]:
                    person = {
                        "person_id": [-1],
                        "pose_keypoints_2d": _numbers(body[t]),
                        "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
                        "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
                        "hand_right_keypoints_3d": [],
                    }
                    if details is not None:
                        face, hands = details
                        person["face_keypoints_2d"] = _numbers(face[t])
                        person["hand_left_keypoints_2d"] = _numbers(hands[t, parts.LEFT_HAND])
                        person["hand_right_keypoints_2d"] = _numbers(hands[t, parts.RIGHT_HAND])
                    people.append(person)
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


def _openpose_zeros(points: np.ndarray) -> np.ndarray:
    """OpenPose's convention for an undetected point is (0, 0, 0): NaNs and confidence 0 become
    zeros (in place; returns ``points``)."""
    gone = ~np.isfinite(points).all(axis=-1) | (points[..., 2] <= 0)
    points[gone] = 0.0
    return points


def _numbers(points: np.ndarray) -> list[float]:
    """(N, 3) -> the flat [x, y, c] * N list OpenPose JSON holds, rounded to 3 decimals."""
    return [round(float(v), 3) for v in points.reshape(-1)]
