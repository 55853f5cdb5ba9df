"""Gap filling, smoothing and holding for keypoints that arrive one frame at a time.

`dance transfer` cleans a detected sequence with :func:`~.smoothing.fill_gaps`, then
:func:`~.smoothing.smooth`, then holds the nearest pose over the frames still without one. Those
functions see the whole sequence. :class:`PoseCleaner` does the same to a stream of packed rows
(K, 3), so that a consumer can start on the first frames while later ones are still being
detected; each frame leaves as soon as it is final, a bounded number of frames after it arrived:

- **Gap filling** is exact: a missing run is bridged (or left missing) when the frame after it
  arrives, at most ``max_gap`` + 1 frames later.
- **One-Euro smoothing** runs forwards and backwards over each run of frames with a person and
  averages the two, as :func:`~.smoothing.smooth` does. The forward pass is causal, hence exact.
  The backward pass for frame t starts at frame t + ``lookahead`` (from that frame's keypoints)
  instead of at the end of the run, unless the run ends sooner. Where the run ends within
  ``lookahead`` frames, and everywhere with ``lookahead=None`` (wait for the whole stream), the
  result is bit for bit :func:`~.smoothing.smooth`'s; elsewhere it misses what the backward
  filter would remember of the frames further ahead, which fades with the filter's cutoffs
  (about 6x per second at the default 1 Hz derivative cutoff).
- **Median smoothing** (a centred window) is exact once the look-ahead covers half the window.
- **Holding**: a frame without a person (after gap filling) takes the previous frame that has
  one; frames before the first detection wait for it and take that one.

Each part is cleaned on its own as in :mod:`.smoothing`: the body (whose frames decide which
frames have a person) and, for holistic rows, the face and each hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from . import parts
from . import skeleton as sk
from .smoothing import HAND_ONE_EURO, _bridge, _check_params, default_max_gap, one_euro_step


@dataclass
class _Part:
    """One part of the packed row: its rows, smoothing parameters and the streaming state."""

    rows: slice
    params: dict
    last_present: int | None = None  # the latest frame (index) where the part is present
    gap_start: int | None = None  # first frame of the missing run at the end of what arrived
    in_run: bool = False  # present in the last frame handed on
    forward: tuple[np.ndarray, np.ndarray] | None = None  # One-Euro state at the last frame handed on
    backward: dict[int, np.ndarray] | None = None  # backward pass from the run's true end, by frame


def _parts(landmarks: str, method: str) -> list[_Part]:
    """The parts of a ``landmarks`` row with the parameters :func:`~.smoothing.smooth` gives them."""
    body = _check_params(method, {})
    hand = _check_params(method, HAND_ONE_EURO if method == "one_euro" else {})
    out = [_Part(slice(0, sk.NUM_LANDMARKS), body)]
    if landmarks == "holistic":
        hands = parts.HANDS_START
        out += [_Part(slice(parts.FACE_START, hands), body),
                _Part(slice(hands, hands + parts.NUM_HAND), hand),
                _Part(slice(hands + parts.NUM_HAND, parts.NUM_PACKED), hand)]
    return out


class PoseCleaner:
    """Gap filling, smoothing and holding of a stream of packed rows (K, 3) (see the module doc).

    landmarks: "body" (33 rows) or "holistic" (145). fps: the stream's frame rate. height: of the
    image the coordinates are in (smoothing works in image heights, as :func:`smooth` does).
    max_gap: longest missing run bridged (None: :func:`default_max_gap`). smooth_method:
    "one_euro", "median" or None. lookahead: frames the backward smoothing pass looks ahead
    (None: the whole stream, which makes the results exactly the offline ones).

    :meth:`push` takes each row in order and returns the frames that became final, as pairs
    (cleaned row, held row): the cleaned row has NaN coordinates where nobody is; the held row
    always has a person. :meth:`finish` returns the rest. ``detected``, ``interpolated`` and
    ``held`` count the frames cleaned so far as :class:`~.smoothing.GapReport` counts them
    (detected, bridged, left without a person), including frames still waiting for a first
    person (:attr:`waiting`).
    """

    def __init__(self, landmarks: str, fps: float, height: int, *, max_gap: int | None = None,
                 smooth_method: str | None = "one_euro", lookahead: int | None = None) -> None:
        self.fps, self.scale = float(fps), float(max(height, 1))
        self.max_gap = default_max_gap(fps) if max_gap is None else int(max_gap)
        self.method = smooth_method
        self._parts = _parts(landmarks, smooth_method or "one_euro")
        self._half = self._parts[0].params.get("window", 1) // 2 if smooth_method == "median" else 0
        # At least one frame: whether a run goes on decides whether a lone frame is smoothed.
        self.lookahead = None if lookahead is None else max(int(lookahead), self._half, 1)
        self._rows: list[np.ndarray] = []  # gap-filled rows from frame self._base on
        self._present: list[list[bool]] = []  # per frame: each part present after gap filling
        self._raw_valid: list[bool] = []  # per frame: a person was detected (before gap filling)
        self._base = self._count = self._next = 0
        self._last_held: np.ndarray | None = None
        self._waiting: list[np.ndarray] = []  # cleaned rows before the first frame with a person
        self._finished = False
        self.detected = self.interpolated = self.held = 0

    # --- input ---------------------------------------------------------------------------------
    def push(self, row: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Take the next frame's row (K, 3); return the frames that became final."""
        if self._finished:
            raise RuntimeError("PoseCleaner.push after finish")
        row = np.array(row, dtype=np.float32, copy=True)
        index = self._count
        self._rows.append(row)
        self._present.append([bool(parts.found(row[p.rows])) for p in self._parts])
        self._raw_valid.append(self._present[-1][0])
        self._count += 1
        for k, part in enumerate(self._parts):
            self._fill(k, part, index)
        if self.lookahead is None:
            return []
        return self._advance(self._filled_until() - self.lookahead)

    def finish(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """No more rows: every remaining frame is final (runs at the end stay missing)."""
        self._finished = True
        return self._advance(self._count)

    def _fill(self, k: int, part: _Part, index: int) -> None:
        """Gap filling of part ``k`` after frame ``index`` arrived: a missing run that ends here,
        short enough and after a frame with the part, is bridged as :func:`fill_gaps` bridges it."""
        if not self._present[index - self._base][k]:
            if part.gap_start is None:
                part.gap_start = index
            return
        start = part.gap_start
        if start is not None and part.last_present is not None and index - start <= self.max_gap:
            window = range(part.last_present - self._base, index - self._base + 1)
            points = np.stack([self._rows[i][part.rows] for i in window])
            _bridge(points, np.array([self._present[i][k] for i in window]), self.max_gap)
            for j, i in enumerate(window):
                self._rows[i][part.rows] = points[j]
                self._present[i][k] = True
        part.gap_start, part.last_present = None, index

    def _pending(self, part: _Part) -> bool:
        """The part's missing run at the end may still be bridged (a frame after it may come)."""
        return (part.gap_start is not None and part.last_present is not None
                and self._count - part.gap_start <= self.max_gap)

    def _filled_until(self) -> int:
        """Frames before this index have their final gap-filled values."""
        return min([self._count] + [part.gap_start for part in self._parts if self._pending(part)])

    # --- output --------------------------------------------------------------------------------
    def _advance(self, until: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Smooth and hold the frames before ``until`` not handed on yet; trim the buffers."""
        out = []
        while self._next < min(until, self._count):
            out.extend(self._hold(self._next, self._smoothed(self._next)))
            self._next += 1
        keep = min([self._next - self._half] + [part.last_present for part in self._parts if self._pending(part)])
        drop = max(0, keep - self._base)
        if drop:
            del self._rows[:drop], self._present[:drop], self._raw_valid[:drop]
            self._base += drop
        return out

    def _smoothed(self, t: int) -> np.ndarray:
        """The row of frame ``t`` with each present part smoothed (see the module doc)."""
        row = self._rows[t - self._base].copy()
        for k, part in enumerate(self._parts):
            if not self._at(t, k):
                part.in_run, part.forward, part.backward = False, None, None
                continue
            first, part.in_run = not part.in_run, True
            if self.method is None:
                continue
            end = self._run_end(t, k)
            if first and end == t + 1:
                continue  # a run of one frame is left as it is, as smooth() leaves it
            if self.method == "median":
                value = self._median(t, k, end)
            else:
                value = self._one_euro(t, part, end)
            row[part.rows, :2] = (value * self.scale).reshape(-1, 2)
        return row

    def _at(self, t: int, k: int) -> bool:
        """Part ``k`` is present at frame ``t`` (False outside the buffer's frames)."""
        i = t - self._base
        return 0 <= i < len(self._present) and self._present[i][k]

    def _xy(self, t: int, part: _Part) -> np.ndarray:
        """Part coordinates of frame ``t`` as the filter sees them: float64, in image heights."""
        return self._rows[t - self._base][part.rows, :2].reshape(-1).astype(np.float64) / self.scale

    def _run_end(self, t: int, k: int) -> int:
        """End (exclusive) of part ``k``'s run through frame ``t`` as far as it matters: the true end
        when it lies within the look-ahead (or the stream is over), else t + lookahead + 1."""
        end = t + 1
        while end < self._horizon(t) and self._at(end, k):
            end += 1
        return end

    def _horizon(self, t: int) -> int:
        """Frames before this index may be looked at to smooth frame ``t``."""
        if self.lookahead is None or self._finished:
            return self._count
        return min(self._count, t + self.lookahead + 1)

    def _one_euro(self, t: int, part: _Part, end: int) -> np.ndarray:
        """Mean of the forward state at ``t`` and a backward pass from ``end - 1`` down to ``t``."""
        p = part.params
        step = (self.fps, p["min_cutoff"], p["beta"], p["d_cutoff"])
        x = self._xy(t, part)
        part.forward = (x.copy(), np.zeros_like(x)) if part.forward is None else one_euro_step(*part.forward, x, *step)
        if part.backward is not None and t in part.backward:
            return (part.forward[0] + part.backward.pop(t)) / 2
        back = self._xy(end - 1, part).copy()
        speed = np.zeros_like(back)
        # From the run's true end every frame's backward value is the same pass: kept for the
        # frames still to come (a window that ends at the look-ahead serves frame t alone).
        exact = end < self._horizon(t) or self.lookahead is None or self._finished
        part.backward = {end - 1: back} if exact else None
        for s in range(end - 2, t - 1, -1):
            back, speed = one_euro_step(back, speed, self._xy(s, part), *step)
            if exact:
                part.backward[s] = back
        if exact:
            part.backward.pop(t)
        return (part.forward[0] + back) / 2

    def _median(self, t: int, k: int, end: int) -> np.ndarray:
        """The centred running median of :func:`~.smoothing._median` at frame ``t`` of its run."""
        start = t
        while start - 1 >= max(self._base, t - self._half) and self._at(start - 1, k):
            start -= 1
        r = min(self._half, t - start, end - 1 - t)
        part = self._parts[k]
        window = np.stack([self._xy(s, part) for s in range(t - r, t + r + 1)])
        return np.median(window, axis=0)

    def _hold(self, t: int, row: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Frame ``t`` (and any frames waiting for a first person) with their held rows."""
        present, raw = self._at(t, 0), self._raw_valid[t - self._base]
        self.detected += raw
        self.interpolated += present and not raw
        self.held += not present
        if not present and self._last_held is None:
            self._waiting.append(row)
            return []
        if present:
            self._last_held = row
        out = [(waiting, self._last_held.copy()) for waiting in self._waiting]
        self._waiting.clear()
        return out + [(row, self._last_held.copy())]

    @property
    def waiting(self) -> int:
        """Frames kept back because no frame with a person has come yet."""
        return len(self._waiting)


def clean_stream(rows: Iterable[np.ndarray], cleaner: PoseCleaner) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each (cleaned row, held row) of ``rows`` run through ``cleaner``, in order, as soon as final."""
    for row in rows:
        yield from cleaner.push(row)
    yield from cleaner.finish()
