"""Person masks and background plates of the prepared target data (the person layer).

Computed once per run next to the frames (``RUNS/NAME/data/``) and reused::

    masks_WxH.u8      raw uint8 (T, H, W) soft person masks (255 = person), letterboxed into the
                      W x H canvas exactly like the frames, read as a memory map
    plates_WxH.npz    ``plates`` (V, H, W, 3) uint8: one background plate per target video;
                      ``holes`` (V, H, W) bool: the inpainted pixels of each
    layer_WxH.json    written last (its presence marks the rest as finished): the videos, the
                      settings, and per video the inpainted fraction and why its camera seems
                      to move (null when it does not)

Masks come from MediaPipe Pose's segmentation of the followed person, run on frames downscaled
to :func:`mask_side` (no extra model: it ships in the mediapipe wheel). Plates and the camera
check: :mod:`vid2vid_app.dance.plate`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..fileio import atomic_path, write_json_atomic
from ..progress import progress
from .plate import Plate, compute_plate
from .prepare import PreparedData

LAYER_VERSION = 1
LAYER_MODES = ("auto", "person", "full")


@dataclass
class LayerData:
    """Masks and plates of prepared data: ``masks_path`` (T, H, W) uint8 file at ``canvas``
    (w, h); ``plates`` (V, H, W, 3) uint8, one per video (index = the frames' ``segment``);
    ``holes`` (V,) inpainted fraction per plate; ``motion`` (V,) per video why its camera seems
    to move, or None; ``names`` the videos' file names."""

    masks_path: Path
    canvas: tuple[int, int]
    frames: int
    plates: np.ndarray
    holes: list[float]
    motion: list[str | None]
    names: list[str]
    hole_notes: list[str]
    reused: bool = False

    @property
    def masks(self) -> np.ndarray:
        """(T, H, W) uint8 read-only memory map of the soft person masks (255 = person)."""
        w, h = self.canvas
        return np.memmap(self.masks_path, dtype=np.uint8, mode="r", shape=(self.frames, h, w))

    def motion_reason(self) -> str | None:
        """Why the person layer cannot be used (the first video whose camera moves), or None."""
        return next((m for m in self.motion if m), None)


def mask_side(canvas: tuple[int, int]) -> int:
    """Longer side of the frames the segmentation runs on: the canvas's, within 256-640 pixels
    (MediaPipe works on a 256-pixel crop of the person; larger inputs only cost decoding)."""
    return int(min(640, max(256, max(canvas))))


def canvas_mask(mask: np.ndarray, box, canvas: tuple[int, int]) -> np.ndarray:
    """A float (h, w) mask in [0, 1] of a whole video frame -> uint8 (H, W) at ``canvas`` (w, h),
    placed in the letterbox ``box``'s content area (0 in the bars)."""
    w, h = canvas
    out = np.zeros((h, w), np.uint8)
    fitted = cv2.resize(mask, (box.content_w, box.content_h), interpolation=cv2.INTER_AREA
                        if box.content_w < mask.shape[1] else cv2.INTER_LINEAR)
    out[box.y0 : box.y0 + box.content_h, box.x0 : box.x0 + box.content_w] = np.round(
        np.clip(fitted, 0.0, 1.0) * 255).astype(np.uint8)
    return out


def _write_masks(data: PreparedData, path: Path, side: int, quiet: bool) -> None:
    """Segment every frame of every target video into the mask file at the data's canvas."""
    from ..pose.detector import segment_frames
    from ..video import ThreadedReader, VideoReader

    n = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for index, video in enumerate(data.videos):
            reader = VideoReader(video, max_side=side)
            start = n
            for mask in segment_frames(ThreadedReader(reader, maxsize=8), quiet=quiet, total=len(reader),
                                       desc=f"person masks {Path(video).name}"):
                out.write(canvas_mask(mask, data.letterbox, data.canvas).tobytes())
                n += 1
            expected = int((data.segment == index).sum())
            if n - start != expected:
                raise RuntimeError(f"{video}: {n - start} person masks for {expected} frames")


class _Frames(Sequence):
    """Lazy view of the frames ``index`` of a (T, ...) memory map (no copy of the whole video)."""

    def __init__(self, array: np.ndarray, index: np.ndarray):
        self.array, self.index = array, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        return self.array[int(self.index[i])]


def prepare_layer(data: PreparedData, *, quiet: bool = False) -> LayerData:
    """Person masks and one plate per target video for ``data``, computed once into its data folder
    (reused while the videos, the canvas and the settings stay the same)."""
    w, h = data.canvas
    root = Path(data.root)
    masks_path = root / f"masks_{w}x{h}.u8"
    plates_path = root / f"plates_{w}x{h}.npz"
    marker_path = root / f"layer_{w}x{h}.json"
    frames_marker = json.loads((root / f"frames_{w}x{h}.json").read_text())
    settings = {"version": LAYER_VERSION, "videos": frames_marker.get("videos"), "frames": len(data),
                "mask_side": mask_side(data.canvas)}
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        marker = None
    reuse = (marker is not None and marker.get("settings") == settings and plates_path.is_file()
             and masks_path.is_file() and masks_path.stat().st_size == len(data) * w * h)
    names = [Path(v).name for v in data.videos]
    if not reuse:
        _write_masks(data, masks_path, settings["mask_side"], quiet)
        masks = np.memmap(masks_path, dtype=np.uint8, mode="r", shape=(len(data), h, w))
        frames = data.frames
        plates: list[Plate] = []
        for index in progress(range(len(data.videos)), desc="background plates", unit="video", quiet=quiet):
            rows = np.flatnonzero(data.segment == index)
            plates.append(compute_plate(_Frames(frames, rows), _Frames(masks, rows)))
        with atomic_path(plates_path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, plates=np.stack([p.image for p in plates]), holes=np.stack([p.holes for p in plates]))
        marker = {"settings": settings,
                  "holes": [p.hole_fraction for p in plates],
                  "hole_notes": [p.hole_note(n) for p, n in zip(plates, names, strict=True)],
                  "motion": [p.motion(n) for p, n in zip(plates, names, strict=True)]}
        write_json_atomic(marker_path, marker)
    with np.load(plates_path) as z:
        stored = z["plates"]
    return LayerData(masks_path=masks_path, canvas=(w, h), frames=len(data), plates=stored,
                     holes=[float(v) for v in marker["holes"]], motion=list(marker["motion"]), names=names,
                     hole_notes=[n for n in marker.get("hole_notes", []) if n], reused=reuse)


def decide_layer(mode: str, layer: LayerData | None) -> tuple[bool, str | None]:
    """Whether to train the person layer for ``mode`` ("auto", "person", "full"), and a one-line
    note when "auto" falls back to full-frame generation (the reason) or "person" is forced over
    a camera that seems to move."""
    if mode == "full" or layer is None:
        return False, None
    reason = layer.motion_reason()
    if reason is None:
        return True, None
    if mode == "person":
        return True, f"--person-layer kept although {reason}; the background will smear"
    return False, f"full-frame generation instead of the person layer: {reason} (--person-layer forces it)"
