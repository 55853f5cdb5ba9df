"""Prepare (once) the training data of a motion-transfer subject: decode, detect, smooth, letterbox.

Layout of the cache folder (``RUNS/NAME/data/``)::

    poses.npz             keypoints (T, K, 3) smoothed, in target-video pixels; raw (T, K, 3)
                          as detected; segment (T,) index of the video each frame comes from.
                          K = 33 body landmarks, or 145 for holistic poses (body, face-70,
                          both hands: the packed layout of vid2vid_app.pose.parts)
    poses.json            written last: which videos (path, bytes, mtime) and settings the poses
                          belong to; its presence marks the pose pass as finished
    frames_WxH.u8         raw uint8 (T, H, W, 3) frames letterboxed into the W x H canvas, read as a
                          memory map (long videos need not fit in memory)
    frames_WxH.json       written last: the frame file's shape; marks it as finished

Pose detection is the slow part; it runs once and is reused for any canvas size. Several target
videos must all have the same size (their keypoints share one coordinate frame and one set of body
statistics); frames of different videos are never paired with each other. Stick figures are not
stored: the dataset draws them on the fly from the canvas keypoints (cheap, and always with the
renderer and style the model is trained with).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path, write_json_atomic
from ..imaging import Letterbox, keypoints_to_canvas, letterbox, letterbox_geometry
from ..progress import plural, progress

CACHE_VERSION = 1


@dataclass
class PreparedData:
    """The prepared target data. ``frames`` (T, H, W, 3) uint8 at ``canvas`` (w, h) (a read-only
    memory map); ``keypoints`` (T, K, 3) (K = 33, or 145 holistic) smoothed, in target-video pixels (x, y, confidence; a
    missing landmark has confidence 0); ``canvas_keypoints`` the same mapped into the canvas;
    ``valid`` (T,) frames with a person (after gap filling); ``segment`` (T,) video index."""

    root: Path
    frames_path: Path
    keypoints: np.ndarray
    canvas_keypoints: np.ndarray
    valid: np.ndarray
    segment: np.ndarray
    target_size: tuple[int, int]
    canvas: tuple[int, int]
    letterbox: Letterbox
    fps: float
    videos: list[str]
    stats: Any
    reused_poses: bool = False
    reused_frames: bool = False

    @property
    def frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8 read-only memory map of the letterboxed frames."""
        w, h = self.canvas
        return np.memmap(self.frames_path, dtype=np.uint8, mode="r", shape=(len(self), h, w, 3))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Hold out the last ``val_fraction`` of the frames. Returns (pair starts, val frames):
        ``t`` in the first array means (t, t+1) is a training pair (both before the held-out part,
        both with a person, from the same video); the second lists the held-out frames with a
        person, in order."""
        return split_frames(self.valid, self.segment, val_fraction)


def split_frames(valid: np.ndarray, segment: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """See :meth:`PreparedData.split`. ``valid`` (T,) bool, ``segment`` (T,) int."""
    n = len(valid)
    n_val = int(round(n * val_fraction))
    cut = n - n_val
    t = np.arange(max(cut - 1, 0))
    ok = valid[t] & valid[t + 1] & (segment[t] == segment[t + 1])
    pairs = t[ok]
    val = np.arange(cut, n)[valid[cut:]]
    return pairs.astype(np.int64), val.astype(np.int64)


def _video_identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime": st.st_mtime}


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_same_size(infos: list) -> tuple[int, int]:
    """All target videos must have one size (the keypoints and body statistics share it)."""
    first = infos[0]
    for info in infos[1:]:
        if (info.width, info.height) != (first.width, first.height):
            raise UserError(
                f"target videos differ in size: {first.path} is {first.width}x{first.height} but "
                f"{info.path} is {info.width}x{info.height}; give videos of one size.")
    return first.width, first.height


def prepare_dance_data(videos: list[str | os.PathLike], data_dir: str | os.PathLike,
                       canvas: tuple[int, int], *, detect_max_side: int = 640,
                       smooth_method: str = "one_euro", max_gap: int = 15, min_frames: int = 8,
                       landmarks: str = "body", workers: int | None = None,
                       quiet: bool = False) -> PreparedData:
    """Decode, detect, smooth and letterbox the target ``videos`` into ``data_dir`` (reusing the
    finished parts of an earlier call) and return the prepared data.

    Poses are detected on frames downscaled to ``detect_max_side`` (coordinates are given back in
    original pixels) by ``workers`` processes (None: every core), with ``landmarks`` "body" or
    "holistic"; gaps of up to ``max_gap`` frames are interpolated; then each video is smoothed.
    Raises :class:`UserError` when the videos differ in size, when no frame shows a person, or when
    fewer than ``min_frames`` do.
    """
    from ..pose.normalize import compute_stats
    from ..video import probe

    paths = [Path(v) for v in videos]
    infos = [probe(p) for p in paths]
    target_size = check_same_size(infos)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    identities = [_video_identity(p) for p in paths]
    settings = {"version": CACHE_VERSION, "videos": identities, "detect_max_side": detect_max_side,
                "smooth_method": smooth_method, "max_gap": max_gap}
    if landmarks != "body":  # body-only caches written before holistic poses stay valid
        settings["landmarks"] = landmarks

    w, h = canvas
    frames_name = f"frames_{w}x{h}"
    frames_path = data_dir / f"{frames_name}.u8"
    pose_marker = _read_marker(data_dir / "poses.json")
    frame_marker = _read_marker(data_dir / f"{frames_name}.json")
    reuse_poses = pose_marker is not None and pose_marker.get("settings") == settings and (data_dir / "poses.npz").is_file()
    reuse_frames = (reuse_poses and frame_marker is not None and frame_marker.get("videos") == identities
                    and frames_path.is_file())

    box = letterbox_geometry(target_size[0], target_size[1], w, h)
    if not (reuse_poses and reuse_frames):
        n_frames = _decode_and_detect(paths, infos, data_dir, canvas, frames_path, detect_max_side,
                                      smooth_method, max_gap, need_poses=not reuse_poses, quiet=quiet,
                                      landmarks=landmarks, workers=workers)
        if not reuse_poses:
            write_json_atomic(data_dir / "poses.json", {"settings": settings, "size": list(target_size),
                                                       "fps": float(infos[0].fps)})
        write_json_atomic(data_dir / f"{frames_name}.json",
                          {"videos": identities, "canvas": [w, h], "frames": n_frames,
                           "letterbox": box.__dict__})

    with np.load(data_dir / "poses.npz") as z:
        keypoints = z["keypoints"].astype(np.float32)
        segment = z["segment"].astype(np.int64)
    if frames_path.stat().st_size != len(keypoints) * h * w * 3:
        raise UserError(f"the data cache in {data_dir} is inconsistent ({frames_path.name} does not hold "
                        f"{len(keypoints)} frames); delete that folder or train with --overwrite.")
    valid = _person_mask(keypoints)
    n_valid = int(valid.sum())
    names = ", ".join(str(p) for p in paths)
    if n_valid == 0:
        raise UserError(f"no person was detected in any of the {len(valid)} frames of {names}.")
    if n_valid < min_frames:
        which = (f"{names} has only {plural(len(valid), 'frame')}, each showing a person" if n_valid == len(valid)
                 else f"only {n_valid} of {len(valid)} frames of {names} show a person")
        raise UserError(f"{which}; at least {min_frames} are needed to train.")

    from ..pose.keypoints import PoseSequence

    stats = compute_stats(PoseSequence.from_packed(keypoints, target_size, float(infos[0].fps)))
    return PreparedData(
        root=data_dir, frames_path=frames_path, keypoints=keypoints,
        canvas_keypoints=keypoints_to_canvas(keypoints, box), valid=valid, segment=segment,
        target_size=target_size, canvas=(w, h), letterbox=box, fps=float(infos[0].fps),
        videos=[str(p) for p in paths], stats=stats, reused_poses=reuse_poses, reused_frames=reuse_frames)


def _person_mask(keypoints: np.ndarray) -> np.ndarray:
    """(T,) True where a frame has any confident, finite body landmark (face and hands, when
    present, never make a frame count as one with a person)."""
    body = keypoints[:, :33]  # the body rows of a packed pose
    conf = np.nan_to_num(body[..., 2], nan=0.0)
    finite = np.isfinite(body[..., :2]).all(axis=-1)
    return ((conf > 0) & finite).any(axis=-1)


def _decode_and_detect(paths, infos, data_dir: Path, canvas, frames_path: Path, detect_max_side: int,
                       smooth_method: str, max_gap: int, *, need_poses: bool, quiet: bool,
                       landmarks: str = "body", workers: int | None = None) -> int:
    """Per video: (when ``need_poses``) detect poses on downscaled frames over worker processes,
    then one decoding pass that appends each frame, letterboxed into the canvas, to the raw frame
    file. Returns the number of frames. Files appear at their final names only when complete."""
    from ..pose.parallel import detect_chunked
    from ..pose.smoothing import fill_gaps, smooth
    from ..video import FrameRange, ThreadedReader, iter_frames

    w, h = canvas
    n = 0
    kp_all, raw_all, seg_all = [], [], []
    with atomic_path(frames_path) as tmp, open(tmp, "wb") as out:
        for index, (path, info) in enumerate(zip(paths, infos, strict=True)):
            start = n
            if need_poses:
                # Detected on downscaled frames (decoded by the workers themselves); coordinates
                # come back in original pixels.
                seq = detect_chunked(FrameRange(path, max_side=detect_max_side or None), info.frame_count,
                                     float(info.fps), (info.width, info.height), workers=workers,
                                     landmarks=landmarks, quiet=quiet)
                raw = seq.packed()
                seq, _ = fill_gaps(seq, max_gap=max_gap)
                seq = smooth(seq, method=smooth_method)
                kp_all.append(seq.packed())
                raw_all.append(raw)
                seg_all.append(np.full(len(raw), index, dtype=np.int32))
            # Decoding runs in a background thread; letterboxing and writing happen here.
            for frame in progress(ThreadedReader(iter_frames(path), maxsize=8), total=info.frame_count,
                                  desc=f"prepare {path.name}", unit="frame", quiet=quiet):
                out.write(letterbox(frame, w, h)[0].tobytes())
                n += 1
            if need_poses and len(raw) != n - start:
                raise RuntimeError(f"{path}: {len(raw)} poses for {n - start} frames")
    if need_poses:
        with atomic_path(data_dir / "poses.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keypoints=np.concatenate(kp_all), raw=np.concatenate(raw_all),
                         segment=np.concatenate(seg_all))
    return n
