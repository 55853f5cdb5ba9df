"""What `dance live` shows and records: the side-by-side view (source | stick figure | result, with
a status bar below), the waiting screen, the OpenCV window and the wall-clock recorder.

All images are uint8 (H, W, 3) RGB; the window converts to OpenCV's BGR itself.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

# Height of each panel of the view; small sources and tiny models are scaled up to it.
PANEL_HEIGHT = 360
STATUS_BAR = 44  # two lines of status text below the panels
_FONT = cv2.FONT_HERSHEY_SIMPLEX
WINDOW_TITLE = "dance live"


@dataclass(frozen=True)
class PanelLayout:
    """Geometry of the view: three panels of ``height`` pixels side by side, of ``widths``
    (source, stick figure, result), and a status bar of ``bar`` pixels below them. The total
    width and height are even (the H.264 recording needs that)."""

    height: int
    widths: tuple[int, int, int]
    bar: int = STATUS_BAR

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole view."""
        w = sum(self.widths)
        return w + w % 2, self.height + self.bar

    def panel_x(self, index: int) -> tuple[int, int]:
        """Columns [x0, x1) of panel ``index`` (0 source, 1 stick figure, 2 result)."""
        x0 = sum(self.widths[:index])
        return x0, x0 + self.widths[index]


def panel_layout(source_size: tuple[int, int], content_size: tuple[int, int],
                 height: int = PANEL_HEIGHT) -> PanelLayout:
    """The layout for source frames of ``source_size`` (w, h) and a model whose output (the
    canvas without its letterbox bars) is ``content_size`` (w, h)."""
    height += height % 2

    def width(size: tuple[int, int]) -> int:
        return max(2, round(size[0] * height / max(1, size[1])))

    return PanelLayout(height, (width(source_size), width(content_size), width(content_size)))


def _fit_panel(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    interpolation = cv2.INTER_AREA if w > width else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def compose(layout: PanelLayout, source: np.ndarray, stick: np.ndarray, result: np.ndarray,
            lines: list[str]) -> np.ndarray:
    """The view: the three images, each resized to its panel, and up to two ``lines`` of status
    text in the bar below. Returns uint8 (height + bar, width, 3)."""
    width, total_h = layout.size
    view = np.zeros((total_h, width, 3), np.uint8)
    for index, image in enumerate((source, stick, result)):
        x0, x1 = layout.panel_x(index)
        view[: layout.height, x0:x1] = _fit_panel(image, x1 - x0, layout.height)
    view[layout.height :] = 32
    for row, line in enumerate(lines[:2]):
        y = layout.height + 17 + 19 * row
        cv2.putText(view, line, (6, y), _FONT, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    return view


def waiting_screen(width: int, height: int, text: str = "waiting for a person") -> np.ndarray:
    """A dark grey (height, width, 3) image with ``text`` centred: the result panel before the
    first person is seen."""
    image = np.full((height, width, 3), 48, np.uint8)
    scale = max(0.25, min(0.6, width / 260))
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, 1)
    cv2.putText(image, text, (max(0, (width - tw) // 2), (height + th) // 2), _FONT, scale, (220, 220, 220), 1,
                cv2.LINE_AA)
    return image


# ------------------------------------------------------------------------------------------------
# Window


def check_display() -> None:
    """:class:`UserError` when an OpenCV window cannot open on Linux: no X11 or Wayland display,
    or a local X display (``:N``) whose server is not running. Checked before anything starts,
    since Qt would abort the whole process instead."""
    from ..errors import UserError

    if not sys.platform.startswith("linux") or os.environ.get("WAYLAND_DISPLAY"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise UserError("--window needs a display, but DISPLAY is not set (no desktop session); "
                        "use -o OUT.mp4 or --serve PORT instead.")
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    if host in ("", "unix") and number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
        raise UserError(f"--window: no X server is running on DISPLAY={display}; use -o OUT.mp4 or --serve PORT "
                        "instead, or start the desktop session (or Xvfb) first.")


class Window:
    """The OpenCV window: :meth:`show` an image, :meth:`poll` the keyboard ("quit" for q or Esc
    or a closed window, "recalibrate" for c, else None). Main thread only (GUI toolkits need it)."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        check_display()
        self.title = title
        # GUI_NORMAL: no toolbar or status bar (Qt builds), the view is the whole window.
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self._shown = False

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, np.ascontiguousarray(image[..., ::-1]))
        self._shown = True

    def poll(self, wait_ms: int = 1) -> str | None:
        key = cv2.waitKey(wait_ms) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            return "quit"
        if key in (ord("c"), ord("C")):
            return "recalibrate"
        if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return "quit"  # closed with the window's own button
        return None

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)  # lets the toolkit process the close


# ------------------------------------------------------------------------------------------------
# Recording


class Recorder:
    """Records the view with wall-clock timing at a constant frame rate.

    :meth:`add` gives each image the time it was shown (seconds, any clock); the recording then
    holds, at every tick of ``fps``, the image on screen at that moment: an image shown for 100 ms
    fills 3 frames at 30 fps, one replaced within a tick is skipped. The file is written in a
    background thread into a temporary file and renamed into place by :meth:`close`
    (:class:`vid2vid_app.video.VideoWriter`).
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, quality: int = 23, preset: str = "veryfast",
                 overwrite: bool = False) -> None:
        from ..video import VideoWriter

        self.fps = Fraction(fps).limit_denominator(1001)
        self.path = Path(path)
        self._writer = VideoWriter(path, self.fps, quality=quality, preset=preset, overwrite=overwrite,
                                   threaded=True, queue_size=4)
        self._t0: float | None = None
        self._last: np.ndarray | None = None
        self._last_t = 0.0

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    def _first_tick(self, t: float) -> int:
        """Index of the first tick at or after time ``t`` (timestamps a microsecond early count
        as on time: frame times are not exact multiples of 1/fps)."""
        return int(np.ceil((t - self._t0) * float(self.fps) - 1e-6))

    def _fill_until(self, t: float) -> None:
        """Write the current image for every tick before ``t``."""
        due = self._first_tick(t)
        while self._written < due:
            self._writer.write(self._last)
            self._written += 1

    def add(self, image: np.ndarray, t: float) -> None:
        """``image`` went on screen at time ``t`` (seconds; never earlier than the previous one)."""
        if self._last is None:
            self._t0, self._written = t, 0
        else:
            self._fill_until(max(t, self._last_t))
        self._last, self._last_t = image, max(t, self._last_t)

    def close(self, t_end: float | None = None) -> Path | None:
        """Write the image on screen until ``t_end`` (at least one frame of it) and finish the file.
        Returns the path, or None when nothing was shown (no file is left then)."""
        if self._last is None:
            self._writer.abort()
            return None
        try:
            self._fill_until(max(t_end if t_end is not None else self._last_t, self._last_t))
            if self._first_tick(self._last_t) >= self._written:  # no tick of the last image written yet
                self._writer.write(self._last)
                self._written += 1
            self._writer.close()
        except BaseException:
            self._writer.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop without leaving a file."""
        self._writer.abort()
