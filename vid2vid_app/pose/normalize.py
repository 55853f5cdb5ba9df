"""Global pose normalisation (Everybody Dance Now): put a source person's poses onto the target's
scale and ground positions, frame by frame.

Per frame (only frames where both ankles are confidently detected):
    a = y of the lower ankle (the larger y, compared by value),
    height = distance from the nose to the midpoint of the ankles (needs the nose too).
Per sequence (:func:`compute_stats`):
    close = max a; median = median a;
    far = median - max{d : 0 < d < median_frac * (close - median)} with d = median - a
          (the farthest position that is not an outlier; ``far = median`` if no a lies above it);
    height_close / height_far = the largest height among frames whose a is within
          ``window`` (5 %) of the range close - far of close / far.
Mapping (:func:`normalize`), for each source frame with ankle position a:
    p  = (a - far_S) / (close_S - far_S)
    dy = far_T + p (close_T - far_T) - a
    s  = scale_far + p (scale_close - scale_far),  scale_close = H_close_T / H_close_S, likewise far
    x' = s (x - cx) + cx + (W_T - W_S) / 2,   y' = s (y - cy) + cy + dy
about an anchor (cx, cy) = (source image centre x, first valid source ankle y) by default. When
source and target images have the same width W this is exactly ``x' = s x + (1 - s) cx``; when
they differ, the image centres are kept aligned. The output is always in the target's pixels
(its ``size`` is the target image size), since the target statistics are.
With this fixed anchor a frame's ankle lands exactly on the target ground position only where
a == cy or s == 1 (the offset is (s - 1)(a - cy)), as in the reference implementation; pass
``anchor="ankle"`` to scale each frame about its own ankle point, which keeps the feet exactly
on the mapped ground position.

Two choices beyond the formula, both from the reference implementation and documented here:
* When the source moves over a smaller depth range than the target (close - far), the target's
  close/far positions are narrowed to the source's range around the target's middle, with the
  target heights there interpolated linearly in ankle y (perspective makes height roughly linear
  in ground position). Otherwise a dancer who stays in place would be stretched across the
  target's whole floor by a few pixels of ankle jitter. ``match_range=False`` turns this off.
* A degenerate range (the person never changes depth) gives p = 0.5, so only the (then equal)
  close/far values matter.
Frames without valid ankles reuse the previous frame's (s, dy) (the first valid one's before it).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import write_json_atomic
from ..progress import plural
from . import skeleton as sk
from .keypoints import PoseSequence

_EPS = 1e-6


@dataclass(frozen=True)
class BodyStats:
    """Per-sequence body statistics in pixels of an image of ``width`` x ``height``."""

    close_ankle_y: float
    far_ankle_y: float
    median_ankle_y: float
    height_close: float
    height_far: float
    width: int
    height: int
    valid_frames: int

    @property
    def range(self) -> float:
        return self.close_ankle_y - self.far_ankle_y

    def height_at(self, ankle_y: float) -> float:
        """Body height expected at ground position ``ankle_y`` (linear between far and close)."""
        if self.range < _EPS:
            return self.height_close
        p = (ankle_y - self.far_ankle_y) / self.range
        return self.height_far + p * (self.height_close - self.height_far)

    def rescaled(self, size: tuple[int, int]) -> BodyStats:
        """The same statistics for the image resized to ``size`` = (width, height): y values scale
        with the height ratio, heights with the mean of the two ratios (exact when the aspect is
        kept)."""
        sx, sy = size[0] / self.width, size[1] / self.height
        sh = (sx + sy) / 2
        return BodyStats(self.close_ankle_y * sy, self.far_ankle_y * sy, self.median_ankle_y * sy,
                         self.height_close * sh, self.height_far * sh, int(size[0]), int(size[1]),
                         self.valid_frames)

    # --- JSON round trip ------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | dict) -> BodyStats:
        """From the string :meth:`to_json` gives (or the already parsed dict)."""
        try:
            data = text if isinstance(text, dict) else json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"body statistics JSON is malformed: {exc}.") from None

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> BodyStats:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path} does not exist.")
        try:
            return cls.from_json(path.read_text())
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None


def frame_measures(seq: PoseSequence, min_conf: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (T,): ankle position a (NaN unless both ankles have confidence >= ``min_conf``)
    and height nose-to-ankle-midpoint (NaN unless the nose is confident too)."""
    return _measures(seq.keypoints, min_conf)


def _measures(kp: np.ndarray, min_conf: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`frame_measures` of body keypoints (T, 33, 3)."""
    la, ra, nose = kp[:, sk.L_ANKLE], kp[:, sk.R_ANKLE], kp[:, sk.NOSE]
    ankles_ok = (la[:, 2] >= min_conf) & (ra[:, 2] >= min_conf)
    ankles_ok &= np.isfinite(la[:, 1]) & np.isfinite(ra[:, 1])
    a = np.where(ankles_ok, np.maximum(la[:, 1], ra[:, 1]), np.nan)
    mid = (la[:, :2] + ra[:, :2]) / 2
    height = np.linalg.norm(nose[:, :2] - mid, axis=1)
    height_ok = ankles_ok & (nose[:, 2] >= min_conf) & np.isfinite(height)
    return a.astype(np.float64), np.where(height_ok, height, np.nan).astype(np.float64)


def compute_stats(seq: PoseSequence, min_conf: float = 0.5, median_frac: float = 0.5,
                  window: float = 0.05, min_frames: int = 5) -> BodyStats:
    """Body statistics of a sequence (see the module docstring).

    Raises :class:`UserError` when fewer than ``min_frames`` frames show both ankles and the nose.
    """
    a, h = frame_measures(seq, min_conf)
    ok = np.isfinite(h)
    if ok.sum() < min_frames:
        which = (f"the poses have only {plural(len(seq), 'frame')}, each showing the nose and both ankles clearly"
                 if ok.all() else f"only {int(ok.sum())} of {len(seq)} frames show the nose and both ankles clearly")
        raise UserError(f"{which}; at least {min_frames} are needed for body statistics.")
    a, h = a[ok], h[ok]
    close = float(a.max())
    median = float(np.median(a))
    d = median - a
    candidates = d[(d > 0) & (d < median_frac * (close - median))]
    far = median - float(candidates.max()) if candidates.size else median
    tol = window * (close - far)
    near_close = h[np.abs(a - close) <= tol]
    near_far = h[np.abs(a - far) <= tol]
    # Heights compared by value (the reference scripts compared lists, i.e. lexicographically).
    height_close = float(near_close.max())  # never empty: the frame with a == close is in it
    height_far = float(near_far.max()) if near_far.size else float(h[np.argmin(np.abs(a - far))])
    return BodyStats(close, far, median, height_close, height_far, seq.width, seq.height, int(ok.sum()))


def _mapping(source: BodyStats, target: BodyStats, match_range: bool):
    """Target close/far positions and the two scales used for every frame."""
    t_close, t_far = target.close_ankle_y, target.far_ankle_y
    if match_range and source.range < target.range:
        middle, half = (t_close + t_far) / 2, source.range / 2
        t_close, t_far = middle + half, middle - half
    scale_close = target.height_at(t_close) / max(source.height_close, _EPS)
    scale_far = target.height_at(t_far) / max(source.height_far, _EPS)
    return t_close, t_far, scale_close, scale_far


def normalize(source_seq: PoseSequence, source_stats: BodyStats, target_stats: BodyStats,
              anchor: tuple[float, float] | str | None = None, min_conf: float = 0.5,
              match_range: bool = True) -> PoseSequence:
    """Map ``source_seq`` onto the target's scale and ground positions, frame by frame.

    Returns a new sequence in the target's pixels (``size`` = target image size, same fps and
    confidences; missing frames stay missing); face and hands, when present, move with the body. ``anchor`` = (cx, cy) in source pixels overrides
    the default (source image centre x, first valid source ankle y); ``anchor="ankle"`` scales
    each frame about (source image centre x, that frame's ankle y). Raises :class:`UserError`
    when the source has no frame with both ankles.
    """
    if (source_stats.width, source_stats.height) != source_seq.size:
        source_stats = source_stats.rescaled(source_seq.size)
    a, _ = frame_measures(source_seq, min_conf)
    valid_a = np.flatnonzero(np.isfinite(a))
    if valid_a.size == 0:
        raise UserError("no frame of the source shows both ankles clearly; cannot normalise its poses.")
    if anchor is None:
        cx, cy = source_seq.width / 2, np.full(len(a), a[valid_a[0]])
    elif isinstance(anchor, str):
        if anchor != "ankle":
            raise ValueError(f"anchor must be None, (cx, cy) or 'ankle', got {anchor!r}")
        cx, cy = source_seq.width / 2, _hold(a, valid_a)
    else:
        cx, cy = float(anchor[0]), np.full(len(a), float(anchor[1]))
    shift_x = (target_stats.width - source_seq.width) / 2  # keeps the image centres aligned
    t_close, t_far, scale_close, scale_far = _mapping(source_stats, target_stats, match_range)

    # Per-frame scale s and vertical shift dy; frames without valid ankles hold the last values.
    s, dy = _scale_shift(a, source_stats, (t_close, t_far, scale_close, scale_far))
    s, dy = _hold(s, valid_a), _hold(dy, valid_a)
    out = _apply(source_seq.packed(), s, dy, cx, cy, shift_x)
    return source_seq.with_points(out, (target_stats.width, target_stats.height))


def _scale_shift(a: np.ndarray, source: BodyStats, mapping: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (T,): the scale s and vertical shift dy for ankle positions ``a`` (NaN where the
    ankles are not valid), with ``mapping`` from :func:`_mapping`."""
    t_close, t_far, scale_close, scale_far = mapping
    s_range = source.range
    p = (a - source.far_ankle_y) / s_range if s_range >= _EPS else np.where(np.isfinite(a), 0.5, np.nan)
    return scale_far + p * (scale_close - scale_far), t_far + p * (t_close - t_far) - a


def _apply(packed: np.ndarray, s: np.ndarray, dy: np.ndarray, cx: float, cy: np.ndarray,
           shift_x: float) -> np.ndarray:
    """The per-frame map of packed points (T, K, 3): scale (T,) ``s`` about (``cx``, ``cy`` (T,)),
    shift ``dy`` (T,) down and ``shift_x`` right; float32. Face and hands (holistic rows) move
    with the body: the same map applies to every point."""
    kp = packed.astype(np.float64)
    out = kp.copy()
    out[:, :, 0] = s[:, None] * (kp[:, :, 0] - cx) + cx + shift_x
    out[:, :, 1] = s[:, None] * (kp[:, :, 1] - cy[:, None]) + cy[:, None] + dy[:, None]
    return out.astype(np.float32)


class StreamNormalizer:
    """:func:`normalize` (default anchor) for poses that arrive one frame at a time, with the
    source's statistics known beforehand (e.g. from a sample of its frames).

    :meth:`push` takes each packed row (K, 3) in the pixels of an image of ``source_size`` and
    returns the rows that are mapped so far, in order: a row waits only while no frame with valid
    ankles has come yet (the anchor and the map of those first frames come from the first such
    frame). Given the statistics :func:`normalize` would use, the rows are bit for bit its rows.
    :meth:`finish` returns nothing more, or raises :class:`UserError` when no frame showed both ankles.
    """

    def __init__(self, source_stats: BodyStats, target_stats: BodyStats, source_size: tuple[int, int],
                 min_conf: float = 0.5, match_range: bool = True) -> None:
        if (source_stats.width, source_stats.height) != tuple(source_size):
            source_stats = source_stats.rescaled(source_size)
        self.source_stats, self.target_stats, self.min_conf = source_stats, target_stats, min_conf
        self._mapping = _mapping(source_stats, target_stats, match_range)
        self._cx = source_size[0] / 2
        self._shift_x = (target_stats.width - source_size[0]) / 2
        self._cy: float | None = None  # anchor: the first valid ankle position
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (s, dy) of the last valid frame
        self._waiting: list[np.ndarray] = []

    def push(self, row: np.ndarray) -> list[np.ndarray]:
        """Map the next row (K, 3); returns the mapped rows (K, 3) float32 that are ready."""
        rows = np.asarray(row, dtype=np.float32)[None]
        a, _ = _measures(rows[:, : sk.NUM_LANDMARKS], self.min_conf)
        if np.isfinite(a[0]):
            self._cy = float(a[0]) if self._cy is None else self._cy
            self._last = _scale_shift(a, self.source_stats, self._mapping)
        if self._last is None:
            self._waiting.append(rows)
            return []
        ready, self._waiting = self._waiting + [rows], []
        s, dy = self._last
        return [_apply(r, s, dy, self._cx, np.full(1, self._cy), self._shift_x)[0] for r in ready]

    def finish(self) -> list[np.ndarray]:
        """The end of the stream; :class:`UserError` when no frame showed both ankles."""
        if self._waiting:
            raise UserError("no frame of the source shows both ankles clearly; cannot normalise its poses.")
        return []


def _hold(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill NaNs of a (T,) array with the last valid value (the first valid one at the start)."""
    idx = np.zeros(len(values), dtype=np.int64)
    idx[valid] = valid
    idx = np.maximum.accumulate(idx)
    idx[: valid[0]] = valid[0]
    return values[idx]
