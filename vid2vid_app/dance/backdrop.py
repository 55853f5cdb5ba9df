"""Backgrounds behind a person-layer model's dancer at transfer time (``--background``).

- ``plate`` (the default): the target's own clean background plate, as trained (with several
  target videos, the plate closest to the source's frames: a source filmed by one of the target's
  cameras gets that camera's room);
- ``source``: the source video's scene: a plate computed from the source frames with the source
  person masked out (other people in the source stay in it);
- ``none``: black, for compositing elsewhere (use the matte of ``--alpha``);
- an image file: one picture behind every frame;
- a video file: its frames in order, looped when it is shorter than the source and cut when longer.

Any other size or aspect is fitted to the output (the video part of the model's canvas): scaled
until it covers it, then centre-cropped (:func:`~vid2vid_app.dance.plate.fit_cover`); a note says
how much was cut. Backgrounds are uint8 (H, W, 3) images on the model's whole canvas (the
letterbox bars, cut from the output anyway, keep the plate).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .plate import compute_plate, fit_cover

BACKGROUND_WORDS = ("plate", "source", "none")
SOURCE_PLATE_FRAMES = 60  # source frames segmented for its plate (spread over the range)


@dataclass
class Backdrop:
    """What goes behind the dancer: one ``image`` for every frame, or the frames of ``video``
    (looped); both fitted into the canvas. ``description`` names it for the report."""

    description: str
    image: np.ndarray | None = None
    video: Path | None = None
    fit: Any = None  # (canvas plate (H, W, 3) uint8, letterbox) to place video frames with
    notes: list[str] = field(default_factory=list)

    @property
    def is_plate(self) -> bool:
        """True when the dancer stays on the model's own plate (nothing to swap)."""
        return self.image is None and self.video is None

    def frames(self, count: int) -> Iterator[np.ndarray]:
        """``count`` uint8 (H, W, 3) canvas images, one per output frame."""
        if self.image is not None:
            for _ in range(count):
                yield self.image
            return
        from ..video import VideoReader

        plate, box = self.fit
        made = 0
        while made < count:
            before = made
            for frame in VideoReader(self.video, end=count - made):
                yield place(fit_content(frame, box), plate, box)
                made += 1
            if made == before:
                raise UserError(f"background video {self.video} has no frame that can be decoded.")


def fit_content(frame: np.ndarray, box) -> np.ndarray:
    """``frame`` fitted (cover, centre-crop) to the letterbox ``box``'s content size."""
    return fit_cover(frame, box.content_w, box.content_h)[0]


def place(content: np.ndarray, plate: np.ndarray, box) -> np.ndarray:
    """The canvas ``plate`` (H, W, 3) with ``content`` pasted into the letterbox ``box``."""
    canvas = plate.copy()
    canvas[box.y0 : box.y0 + box.content_h, box.x0 : box.x0 + box.content_w] = content
    return canvas


def check_layered(model: Any, option: str) -> None:
    """:class:`UserError` unless ``model`` is a person-layer model (``option`` names what needs it)."""
    if not getattr(model, "person_layer", False):
        raise UserError(f"{option} needs a person-layer model, but {getattr(model, 'path', None) or 'this model'} "
                        "generates whole frames (trained with --full-frame, with a moving camera, or before the "
                        "person layer existed).")


def make_backdrop(spec: str | os.PathLike | None, model: Any, source: Path, start: int, end: int,
                  crop: tuple[int, int, int, int] | None = None, quiet: bool = True) -> Backdrop | None:
    """The :class:`Backdrop` for ``--background spec`` (see the module doc); None for a full-frame
    model when ``spec`` is None or "plate". Picks the model's plate (:meth:`use_plate`): the one
    closest to the source's frames when it has several.

    ``source``, ``start``, ``end`` and ``crop`` describe the transferred part of the source. Raises
    :class:`UserError` for a full-frame model with another background, a missing file, or a file
    that is neither an image nor a video.
    """
    if (spec is None or str(spec) == "plate") and not getattr(model, "person_layer", False):
        return None
    check_layered(model, f"--background {spec}")
    box = model.letterbox
    described = "the target's background plate"
    if len(model.plates) > 1:
        samples = [place(fit_content(f, box), model.plates[0].numpy(), box)
                   for f in sample_source_frames(source, start, end, crop, 8, 2 * max(model.resolution))]
        model.use_plate(closest_image(model.plates.numpy(), np.stack(samples), box))
        described = (f"the background plate of target video {model.plate_index + 1} of {len(model.plates)} "
                     "(the closest to the source's frames)")
    if spec is None or str(spec) == "plate":
        return Backdrop(described)
    plate = model.plates[model.plate_index].numpy()
    if str(spec) == "none":
        return Backdrop("black (none)", image=np.zeros_like(plate))
    if str(spec) == "source":
        content, notes = source_plate(source, start, end, crop, (box.content_w, box.content_h), quiet)
        return Backdrop(f"the scene of {source.name}", image=place(content, plate, box), notes=notes)
    return media_backdrop(Path(spec), plate, box, end - start)


def open_background(spec: str | os.PathLike | None):
    """The :class:`~vid2vid_app.media.MediaSource` of a ``--background`` file, or None for one of
    :data:`BACKGROUND_WORDS`; :class:`UserError` for a folder, a missing file or a file that is
    neither an image nor a video. Cheap: call it before the slow work."""
    from ..media import open_media

    if spec is None or str(spec) in BACKGROUND_WORDS:
        return None
    path = Path(spec)
    if path.is_dir():
        raise UserError(f"--background {path} is a folder; give an image or a video file (or plate, source, none).")
    if not path.exists():
        raise UserError(f"--background {path} does not exist; give an image or a video file, or one of "
                        f"{', '.join(BACKGROUND_WORDS)}.")
    try:
        return open_media(path)
    except UserError as exc:
        raise UserError(f"--background: {exc}") from None


def media_backdrop(path: Path, plate: np.ndarray, box, frames: int) -> Backdrop:
    """A background image or video file fitted into the canvas; notes on fitting and looping."""
    media = open_background(path)
    first = next(iter(media), None)
    if first is None:
        raise UserError(f"background {path} has no frame that can be decoded.")
    _, how = fit_cover(first, box.content_w, box.content_h)
    notes = [f"background {path.name}: {how}"] if how else []
    if media.kind == "image":
        return Backdrop(f"the image {path.name}", image=place(fit_content(first, box), plate, box), notes=notes)
    length = int(media.frame_count)
    if 0 < length < frames:
        notes.append(f"background video {path.name} has {length} frames for the {frames} of the output; "
                     "it is looped")
    elif length > frames:
        notes.append(f"background video {path.name} is cut to the output's {frames} frames (of its {length})")
    return Backdrop(f"the video {path.name}", video=path, fit=(plate, box), notes=notes)


def closest_image(images: np.ndarray, frames: np.ndarray, box=None) -> int:
    """Index of the image (V, H, W, 3) (a plate, a mean frame) that best matches ``frames``
    (N, H, W, 3), all uint8 on one canvas: the smallest median colour difference (the person
    covers only a small part), over the letterbox ``box``'s content when given."""
    if box is not None:
        window = (slice(None), slice(box.y0, box.y0 + box.content_h), slice(box.x0, box.x0 + box.content_w))
        images, frames = images[window], frames[window]
    frames = frames.astype(np.int16)
    scores = [float(np.median(np.abs(frames - p.astype(np.int16)).max(axis=-1))) for p in images]
    return int(np.argmin(scores))


# Frames this far apart (on average) are reached by seeking rather than by decoding every frame
# between them (a key-frame interval per frame instead of the whole range).
SEEK_SPARSER_THAN = 8


def sample_source_frames(source: Path, start: int, end: int, crop: tuple[int, int, int, int] | None, count: int,
                         max_side: int) -> list[np.ndarray]:
    """At most ``count`` frames spread over ``[start, end)`` of the source (its ``crop`` region),
    downscaled to ``max_side``, as uint8 (h, w, 3): frames start, start + step, ... with
    step = (end - start) // count."""
    step = max(1, (end - start) // count)
    return source_frames_at(source, list(range(start, end, step))[:count], crop, max_side)


def source_frames_at(source: Path, indices: list[int], crop: tuple[int, int, int, int] | None,
                     max_side: int) -> list[np.ndarray]:
    """The source frames numbered ``indices`` (ascending; its ``crop`` region), downscaled to
    ``max_side``, as uint8 (h, w, 3); sparse frames are reached by seeking."""
    from ..video import VideoReader, frames_at, probe

    if not indices:
        return []
    if (indices[-1] - indices[0]) >= SEEK_SPARSER_THAN * len(indices):
        frames = frames_at(source, indices, max_side=max_side)
    else:  # decode the stretch, converting only every step-th frame (all the indices are among them)
        step = math.gcd(*(b - a for a, b in zip(indices[:-1], indices[1:], strict=True))) or 1
        wanted = set(indices)
        reader = VideoReader(source, start=indices[0], end=indices[-1] + 1, step=step, max_side=max_side)
        frames = [f for i, f in zip(range(indices[0], indices[-1] + 1, step), reader, strict=False) if i in wanted]
    if crop is None or not frames:
        return frames
    info = probe(source)
    sx, sy = frames[0].shape[1] / info.width, frames[0].shape[0] / info.height
    x, y, w, h = crop
    x0, y0 = round(x * sx), round(y * sy)
    return [np.ascontiguousarray(f[y0 : y0 + max(1, round(h * sy)), x0 : x0 + max(1, round(w * sx))])
            for f in frames]


def source_plate(source: Path, start: int, end: int, crop: tuple[int, int, int, int] | None,
                 size: tuple[int, int], quiet: bool = True) -> tuple[np.ndarray, list[str]]:
    """The source's own background: a plate of the frames ``[start, end)`` (of the ``crop`` region)
    with the source person masked out, fitted to ``size`` (w, h). Segments at most
    :data:`SOURCE_PLATE_FRAMES` frames spread over the range, each on its own (static mode).
    Returns (uint8 (h, w, 3), notes on holes and camera motion)."""
    from ..pose.detector import segment_frames

    side = int(min(640, max(256, 2 * max(size))))
    frames = sample_source_frames(source, start, end, crop, SOURCE_PLATE_FRAMES, side)
    masks = list(segment_frames(frames, static=True, quiet=quiet, total=len(frames), desc="source plate"))
    plate = compute_plate(frames, masks)
    name = source.name
    notes = [n for n in (plate.hole_note(name), plate.motion(name)) if n]
    if plate.motion(name):
        notes[-1] += "; its plate is blurred"
    fitted, how = fit_cover(plate.image, *size)
    if how:
        notes.append(f"the scene of {name}: {how}")
    return fitted, notes
