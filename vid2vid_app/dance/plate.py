"""The clean background plate of a static camera, and whether the camera is static at all.

With the camera on a tripod every background pixel is seen without the person in most frames, so
the per-pixel median over the frames where that pixel is not covered by the person is the empty
room. Pixels the person never leaves (someone dancing on one spot) have no such frame: they are
*holes*, filled by inpainting from their surroundings (:func:`cv2.inpaint`, Telea's method).

A moving or shaking camera breaks the idea: the median is then a blur that does not match the
frames. :func:`compute_plate` measures how well the plate explains each frame's non-person pixels
(after taking out a global exposure change) and :attr:`Plate.motion` says why a plate is unusable.

Images are uint8 (H, W, 3) RGB; masks (H, W) with 1 (or 255) = person. Everything works at the
resolution it is given (the training canvas): camera motion too small to see there does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PERSON_LEVEL = 0.5  # a pixel belongs to the person where the soft mask reaches this
PERSON_MARGIN = 0.03  # person masks grow by this x the image height (soft edges, hair, shadows)
MAX_PLATE_FRAMES = 120  # frames sampled evenly for the median (enough for a stable median)
MIN_SEEN = 0.05  # a pixel seen empty in fewer than this fraction of the frames is a hole
DIFF_LEVEL = 25  # grey levels beyond which a pixel is not explained by the plate
# A frame whose non-person pixels are unexplained beyond UNEXPLAINED_FRAME, in more than MOVING_FRAMES
# of the frames: the camera moves. On the bundled tripod clips the median frame has 0.0-0.3 %
# unexplained pixels; shaking them by +-3 pixels of 360 gives 7.5 %, a slow pan over a fifth of
# the width 22 %, a second person walking about 4.6 %.
UNEXPLAINED_FRAME = 0.05
MOVING_FRAMES = 0.5
INPAINT_RADIUS = 5


@dataclass
class Plate:
    """A background plate: ``image`` (H, W, 3) uint8; ``holes`` (H, W) bool, the inpainted pixels;
    ``unexplained`` (F,) per sampled frame the fraction of its non-person pixels that differ from
    the plate by more than :data:`DIFF_LEVEL` grey levels."""

    image: np.ndarray
    holes: np.ndarray
    unexplained: np.ndarray

    @property
    def hole_fraction(self) -> float:
        """Fraction of the image that had to be inpainted (0 when the person moved around enough)."""
        return float(self.holes.mean())

    @property
    def moving_frames(self) -> float:
        """Fraction of the sampled frames the plate does not explain."""
        return float((self.unexplained > UNEXPLAINED_FRAME).mean()) if len(self.unexplained) else 0.0

    def motion(self, name: str = "the video") -> str | None:
        """Why this plate cannot stand for the background of ``name`` (a moving camera), or None."""
        moving = self.moving_frames
        if moving <= MOVING_FRAMES:
            return None
        return (f"the camera of {name} seems to move: the background plate does not explain {moving:.0%} of its "
                f"frames (in the median frame {float(np.median(self.unexplained)):.0%} of the non-person pixels "
                f"differ by more than {DIFF_LEVEL} grey levels)")

    def hole_note(self, name: str = "the video") -> str | None:
        """A note on inpainted holes (the person never left part of the frame), or None."""
        if not self.holes.any():
            return None
        ys, xs = np.nonzero(self.holes)
        h, w = self.holes.shape
        return (f"the person in {name} never left {self.hole_fraction:.1%} of the frame (around x "
                f"{xs.mean() / w:.0%}, y {ys.mean() / h:.0%} of it); that part of the background plate is "
                "inpainted from its surroundings")


def sample_indices(n: int, max_frames: int = MAX_PLATE_FRAMES) -> np.ndarray:
    """At most ``max_frames`` indices spread evenly over ``range(n)`` (all of them when fewer)."""
    if n <= max_frames:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(np.int64))


def person_region(mask: np.ndarray, margin: int) -> np.ndarray:
    """bool (H, W): the person of a soft ``mask`` (H, W) (float in [0, 1] or uint8 0-255), grown
    by ``margin`` pixels in every direction."""
    mask = np.asarray(mask)
    level = PERSON_LEVEL * (255 if mask.dtype == np.uint8 else 1)
    person = (mask >= level).astype(np.uint8)
    if margin > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        person = cv2.dilate(person, kernel)
    return person.astype(bool)


def _median_plate(frames: Sequence[np.ndarray], empty: np.ndarray, band: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of ``frames`` (F, H, W, 3) over the frames where ``empty`` (F, H, W) is
    True, in bands of rows to bound the memory. Returns (float32 (H, W, 3), NaN where never
    empty; int (H, W) how many frames saw each pixel empty)."""
    h, w = empty.shape[1:]
    plate = np.full((h, w, 3), np.nan, np.float32)
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        block = np.stack([np.asarray(f[y0:y1], dtype=np.float32) for f in frames])  # (F, b, W, 3)
        block[~empty[:, y0:y1]] = np.nan
        seen = empty[:, y0:y1].any(axis=0)
        if seen.any():
            plate[y0:y1][seen] = np.nanmedian(block[:, seen], axis=0)
    return plate, empty.sum(axis=0)


def _unexplained(frames: Sequence[np.ndarray], empty: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """(F,) per frame the fraction of its ``empty`` pixels whose colour differs from ``plate``
    by more than :data:`DIFF_LEVEL` in some channel, after removing the frame's median colour
    shift (auto exposure and white balance change the whole frame, not the scene)."""
    out = np.zeros(len(frames), np.float32)
    ref = plate.astype(np.float32)
    for i, frame in enumerate(frames):
        where = empty[i]
        if not where.any():
            continue
        diff = np.asarray(frame, dtype=np.float32)[where] - ref[where]  # (P, 3)
        diff -= np.median(diff, axis=0)
        out[i] = float((np.abs(diff).max(axis=1) > DIFF_LEVEL).mean())
    return out


def compute_plate(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
                  max_frames: int = MAX_PLATE_FRAMES, margin: float = PERSON_MARGIN) -> Plate:
    """The background plate of ``frames`` (T, H, W, 3) uint8 with person ``masks`` (T, H, W)
    (soft, float [0, 1] or uint8 0-255; all zeros for a frame without a person).

    Uses at most ``max_frames`` frames spread over the video; person masks grow by ``margin`` x H
    pixels first. Pixels empty in fewer than :data:`MIN_SEEN` of those frames (at least one) are
    holes and are inpainted. Raises ValueError for no frames or mismatched shapes.
    """
    if len(frames) == 0 or len(frames) != len(masks):
        raise ValueError(f"need as many masks as frames (got {len(frames)} frames, {len(masks)} masks)")
    index = sample_indices(len(frames), max_frames)
    picked = [np.asarray(frames[int(t)]) for t in index]
    h, w = picked[0].shape[:2]
    grow = int(round(margin * h))
    empty = np.stack([~person_region(masks[int(t)], grow) for t in index])  # (F, H, W)
    if empty.shape[1:] != (h, w):
        raise ValueError(f"masks of {empty.shape[2]}x{empty.shape[1]} do not fit frames of {w}x{h}")
    median, seen = _median_plate(picked, empty)
    holes = seen < max(1, int(np.ceil(MIN_SEEN * len(index))))
    image = np.nan_to_num(median, nan=0.0).round().clip(0, 255).astype(np.uint8)
    if holes.all():
        # The person covers every pixel in every frame: nothing to inpaint from; a grey plate.
        image[:] = 128
    elif holes.any():
        image = cv2.inpaint(image, holes.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return Plate(image=image, holes=holes, unexplained=_unexplained(picked, empty, image))


# ------------------------------------------------------------------------------------------------
# Fitting other backgrounds to the output canvas


def fit_cover(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, str | None]:
    """Fit uint8 (h, w, 3) ``image`` to exactly ``width`` x ``height``: scaled (aspect kept) until
    it covers the area, then centre-cropped. Returns the fitted image and, when the aspect
    differed, a sentence saying how much was cut (None when it only had to be scaled)."""
    ih, iw = image.shape[:2]
    scale = max(width / iw, height / ih)
    sw, sh = max(width, round(iw * scale)), max(height, round(ih * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (sw, sh), interpolation=interp) if (sw, sh) != (iw, ih) else image
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    fitted = np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])
    if (sw, sh) == (width, height):
        return fitted, None
    if sw > width:
        cut = f"{(sw - width) / sw:.0%} of its width cut from the left and right"
    else:
        cut = f"{(sh - height) / sh:.0%} of its height cut from the top and bottom"
    return fitted, (f"{iw}x{ih} background scaled to cover the {width}x{height} output and centre-cropped "
                    f"({cut})")
