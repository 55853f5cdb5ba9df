"""Temporal clean-up of keypoint sequences: gap filling and smoothing.

Detectors miss a frame now and then and their landmarks tremble by a few pixels from frame to
frame; both show up as flicker in generated video. Short misses are bridged by linear
interpolation; long ones stay missing (guessing a second of motion would invent it). Smoothing
works on each run of consecutive detected frames separately, so it never blends across a gap.

Holistic sequences are cleaned up per part: the body as above (its frames decide which frames
have a person), then the face and each hand on their own runs of frames where that part was
found, so a hand that drops out for two frames is bridged even while the body was seen
throughout, and a hand seen in only some frames is never smoothed across its absence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..config import SMOOTHING_METHODS
from . import parts
from .keypoints import PoseSequence


@dataclass
class GapReport:
    """What :func:`fill_gaps` did. Runs are (start, end) frame ranges, end exclusive."""

    total_frames: int
    detected_frames: int
    filled_frames: int
    missing_frames: int
    filled_runs: list[tuple[int, int]] = field(default_factory=list)
    missing_runs: list[tuple[int, int]] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.detected_frames}/{self.total_frames} frames with a person, "
                f"{self.filled_frames} filled by interpolation, {self.missing_frames} left missing")
        if self.missing_runs:
            shown = ", ".join(f"{s}-{e - 1}" for s, e in self.missing_runs[:5])
            more = " ..." if len(self.missing_runs) > 5 else ""
            text += f" (frames {shown}{more})"
        return text


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) ranges, end exclusive, where the 1-D bool ``mask`` is True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def default_max_gap(fps: float) -> int:
    """Longest gap bridged by default: a quarter of a second of frames (at least 1)."""
    return max(1, round(0.25 * fps))


def fill_gaps(seq: PoseSequence, max_gap: int | None = None) -> tuple[PoseSequence, GapReport]:
    """Bridge runs of at most ``max_gap`` missing frames that have detected frames on both sides.

    Coordinates are interpolated linearly per landmark between the two neighbouring frames; each
    landmark's confidence is the lower of its two neighbours'. Longer runs, and runs at the very
    start or end, stay missing (NaN, confidence 0) and are listed in the report.
    ``max_gap=None`` uses :func:`default_max_gap`; ``max_gap=0`` fills nothing.
    """
    if max_gap is None:
        max_gap = default_max_gap(seq.fps)
    out = seq.copy()
    valid = seq.valid
    filled_runs, missing_runs = _bridge(out.keypoints, valid, max_gap)
    if out.face is not None:  # per part (the report counts the body's frames)
        _bridge(out.face, parts.found(out.face), max_gap)
        for side in (parts.LEFT_HAND, parts.RIGHT_HAND):
            hand = out.hands[:, side]
            _bridge(hand, parts.found(hand), max_gap)
    report = GapReport(
        total_frames=len(seq),
        detected_frames=int(valid.sum()),
        filled_frames=sum(e - s for s, e in filled_runs),
        missing_frames=sum(e - s for s, e in missing_runs),
        filled_runs=filled_runs,
        missing_runs=missing_runs,
    )
    return out, report


def _bridge(points: np.ndarray, present: np.ndarray, max_gap: int) -> tuple[list, list]:
    """Interpolate, in place, the runs of at most ``max_gap`` frames where ``present`` (T,) is False
    between two frames where it is True, in ``points`` (T, N, 3): coordinates linearly, confidence
    the lower of the two neighbours'. Returns (filled runs, runs left missing)."""
    filled_runs, missing_runs = [], []
    for start, end in _runs(~present):
        inner = start > 0 and end < len(points)
        if inner and end - start <= max_gap:
            before, after = points[start - 1].copy(), points[end].copy()
            for t in range(start, end):
                w = (t - start + 1) / (end - start + 1)
                points[t, :, :2] = (1 - w) * before[:, :2] + w * after[:, :2]
                points[t, :, 2] = np.minimum(before[:, 2], after[:, 2])
            filled_runs.append((start, end))
        else:
            missing_runs.append((start, end))
    return filled_runs, missing_runs


# --- smoothing ----------------------------------------------------------------------------------

def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass filter with ``cutoff`` (Hz) at ``fps``."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def one_euro_step(x_hat: np.ndarray, dx_hat: np.ndarray, x: np.ndarray, fps: float, min_cutoff: float,
                  beta: float, d_cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """One step of the One-Euro filter: the state (``x_hat``, ``dx_hat``) after sample ``x``, all
    float64 arrays of one shape (any: one row per filter). :func:`_one_euro` and the streaming
    filter of :mod:`.stream` both step with this, so they compute the same numbers."""
    a_d = _alpha(d_cutoff, fps)
    dx = (x - x_hat) * fps
    dx_hat = a_d * dx + (1 - a_d) * dx_hat
    a = _alpha(min_cutoff + beta * np.abs(dx_hat), fps)
    return a * x + (1 - a) * x_hat, dx_hat


def _one_euro(xy: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) along axis 0 of ``xy`` (T, N), all columns at once.

    The cutoff rises with the filtered speed: slow motion (where jitter is visible) is smoothed
    hard, fast motion is followed closely, which keeps the lag small.
    """
    out = np.empty_like(xy)
    x_hat = xy[0].copy()
    dx_hat = np.zeros_like(x_hat)
    out[0] = x_hat
    for t in range(1, len(xy)):
        x_hat, dx_hat = one_euro_step(x_hat, dx_hat, xy[t], fps, min_cutoff, beta, d_cutoff)
        out[t] = x_hat
    return out


def _median(xy: np.ndarray, window: int) -> np.ndarray:
    """Centred running median along axis 0 of ``xy`` (T, N); the window shrinks at the ends so
    the first and last frames stay centred too (no shift, hence no lag)."""
    half = window // 2
    out = np.empty_like(xy)
    for t in range(len(xy)):
        r = min(half, t, len(xy) - 1 - t)
        out[t] = np.median(xy[t - r : t + r + 1], axis=0)
    return out


# One-Euro settings for hands (see :func:`smooth`), from bench/hand_smoothing.py: over a grid of
# min_cutoff x beta on the hands of the four bundled clips (MediaPipe Holistic, 60 fps), the lowest
# jitter + drift, both in hand lengths (wrist to middle-finger base). The body's (2, 4) drew hand
# points 0.19 hand lengths from their detections on average (lag behind fast moves); (8, 2) moves
# them 0.11 and still cuts the frame-to-frame jitter from 0.33 to 0.13.
HAND_ONE_EURO = {"min_cutoff": 8.0, "beta": 2.0, "d_cutoff": 1.0}


def _check_params(method: str, params: dict) -> dict:
    """The complete, checked parameters of ``method`` (defaults filled in); ValueError otherwise."""
    if method not in SMOOTHING_METHODS:
        raise ValueError(f"unknown smoothing method {method!r}; choose from {', '.join(SMOOTHING_METHODS)}")
    if method == "one_euro":
        unknown = set(params) - {"min_cutoff", "beta", "d_cutoff"}
        out = {"min_cutoff": float(params.get("min_cutoff", 2.0)), "beta": float(params.get("beta", 4.0)),
               "d_cutoff": float(params.get("d_cutoff", 1.0))}
        if out["min_cutoff"] <= 0 or out["d_cutoff"] <= 0 or out["beta"] < 0:
            raise ValueError("one_euro needs min_cutoff > 0, d_cutoff > 0 and beta >= 0")
    else:
        unknown = set(params) - {"window"}
        out = {"window": int(params.get("window", 5))}
        if out["window"] < 1 or out["window"] % 2 == 0:
            raise ValueError(f"median window must be a positive odd number of frames, got {out['window']}")
    if unknown:
        raise ValueError(f"unknown parameters for {method}: {', '.join(sorted(unknown))}")
    return out


def _smooth_runs(points: np.ndarray, present: np.ndarray, fps: float, scale: float, method: str,
                 params: dict) -> None:
    """Smooth x, y of ``points`` (T, N, 3) in place over each run of frames where ``present``."""
    for start, end in _runs(present):
        if end - start < 2:
            continue
        xy = points[start:end, :, :2].reshape(end - start, -1).astype(np.float64) / scale
        if method == "one_euro":
            p = (params["min_cutoff"], params["beta"], params["d_cutoff"])
            res = (_one_euro(xy, fps, *p) + _one_euro(xy[::-1], fps, *p)[::-1]) / 2
        else:
            res = _median(xy, params["window"])
        points[start:end, :, :2] = (res * scale).reshape(end - start, -1, 2)


def smooth(seq: PoseSequence, method: str = "one_euro", hand_params: dict | None = None,
           **params) -> PoseSequence:
    """Temporally smooth x, y of every landmark; confidences and missing frames are unchanged.

    method="one_euro" (default): params ``min_cutoff`` (Hz, default 2.0), ``beta`` (default 4.0,
    per unit of speed in image heights per second), ``d_cutoff`` (Hz, default 1.0). It runs
    forwards and then backwards over each run of detected frames and averages the two passes,
    which cancels the filter's lag (possible because whole sequences are processed offline).
    method="median": param ``window`` (odd number of frames, default 5), a centred running median.
    Coordinates are divided by the image height before filtering so the parameters do not depend
    on the resolution.

    Holistic sequences: the face uses ``params`` too; the hands use ``hand_params`` (default
    :data:`HAND_ONE_EURO` for one_euro, ``params`` for median), each part over its own runs.
    """
    body_params = _check_params(method, params)
    if hand_params is None:
        hand_params = HAND_ONE_EURO if method == "one_euro" else params
    hand_params = _check_params(method, hand_params)
    out = seq.copy()
    scale = float(max(seq.height, 1))
    _smooth_runs(out.keypoints, seq.valid, seq.fps, scale, method, body_params)
    if out.face is not None:
        _smooth_runs(out.face, parts.found(out.face), seq.fps, scale, method, body_params)
        for side in (parts.LEFT_HAND, parts.RIGHT_HAND):
            hand = out.hands[:, side]  # a view: smoothed in place
            _smooth_runs(hand, parts.found(hand), seq.fps, scale, method, hand_params)
    return out

