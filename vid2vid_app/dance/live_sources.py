"""Frame sources of `dance live`: a camera, a network stream or a video file, as one iterator of
timestamped frames.

``--source`` takes:

- a camera number (``0``) or a V4L2 device (``/dev/video2``), read with OpenCV;
- a stream URL (``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://``, ``srt://``), read
  with OpenCV's FFmpeg backend;
- a video file, decoded with PyAV (:class:`vid2vid_app.video.VideoReader`). ``realtime`` paces it at
  its own frame rate, so that a file behaves like a camera; without it every frame is read as fast
  as the pipeline takes them.

Opening never hangs: a stream URL is first probed with a plain TCP connection (so "connection
refused" and "host not found" are told apart from "no answer"), and OpenCV's open and read
timeouts are set; the open itself runs in a helper thread given ``timeout`` seconds. A source that
stops delivering frames (a camera unplugged, a stream that ends or stalls for ``timeout``
seconds) ends the iteration, with the reason in :attr:`FrameSource.end_note`.

Frames are uint8 (H, W, 3) RGB, downscaled so that the longer side is at most ``max_side``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ..errors import UserError

# Long side of the frames handed to the pipeline: MediaPipe works on 256-pixel crops anyway, and the
# source panel of the display is smaller still; a 1080p camera frame would only cost conversions.
MAX_SIDE = 640
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}
# A camera or stream that reports no (or an absurd) frame rate is taken to run at this one.
FALLBACK_FPS = 30.0


@dataclass
class SourceSpec:
    """A parsed ``--source``: ``kind`` "camera", "url" or "file", and what to open (a camera
    index or device path, a URL, a file path)."""

    kind: str
    target: int | str
    text: str


def parse_source(text: str | int | os.PathLike) -> SourceSpec:
    """Tell a camera (``0``, ``/dev/video2``), a stream URL and a video file apart.
    :class:`UserError` for a file that does not exist."""
    text = str(text).strip() or "0"
    if re.fullmatch(r"\d+", text):
        return SourceSpec("camera", int(text), text)
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text, text)
    scheme = urlsplit(text).scheme.lower()
    if scheme in URL_SCHEMES:
        return SourceSpec("url", text, text)
    if "://" in text:
        raise UserError(f"--source {text}: unsupported stream type '{scheme}://'; use one of "
                        f"{', '.join(s + '://' for s in URL_SCHEMES)}, a camera number or a video file.")
    path = Path(text)
    if not path.exists():
        raise UserError(f"--source {text} does not exist; give a camera number (0), a device (/dev/video0), "
                        "a stream URL (rtsp://..., http://...) or a video file.")
    return SourceSpec("file", str(path), text)


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    from ..imaging import resize_max_side

    return resize_max_side(image, max_side)


class FrameSource:
    """Base of the sources: ``name``, ``fps`` (frames per second the source delivers, or
    :data:`FALLBACK_FPS`), ``size`` (width, height) of the frames it yields, ``live`` (frames
    arrive on their own clock and stale ones may be dropped) and :meth:`frames`."""

    name: str = "source"
    fps: float = FALLBACK_FPS
    size: tuple[int, int] = (0, 0)
    live: bool = True
    end_note: str | None = None  # why the frames stopped before the user stopped them (None: not yet)

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(seconds since the first frame on the source's clock, uint8 (H, W, 3) RGB frame)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or connection (safe to call twice, from any thread)."""


# ------------------------------------------------------------------------------------------------
# Cameras and streams (OpenCV)


def _check_reachable(url: str, timeout: float) -> None:
    """A plain TCP connection to the URL's host and port, for a clear reason when it fails
    (UDP-based and unknown-port schemes are not probed)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        raise UserError(f"--source {url}: the port is not a number.") from None
    if scheme in ("udp", "srt") or not parts.hostname or port is None:
        return
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except socket.gaierror:
        raise UserError(f"cannot open the stream {url}: host {parts.hostname} not found.") from None
    except TimeoutError:
        raise UserError(f"cannot open the stream {url}: {parts.hostname}:{port} did not answer within "
                        f"{timeout:g} s.") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UserError(f"cannot open the stream {url}: {parts.hostname}:{port} {reason}.") from None


def _open_capture(spec: SourceSpec, timeout: float):
    """An opened ``cv2.VideoCapture`` for a camera or URL, or :class:`UserError` within about
    ``timeout`` seconds. The open runs in a helper thread: some backends ignore their timeouts."""
    import cv2

    cv2.setLogLevel(2)  # errors only: a failed open is explained by the UserError below
    ms = int(timeout * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    if spec.kind == "url":
        api = cv2.CAP_FFMPEG
    else:
        api = cv2.CAP_V4L2 if os.name == "posix" and os.uname().sysname == "Linux" else cv2.CAP_ANY
    result: list = []

    def target() -> None:
        result.append(cv2.VideoCapture(spec.target, api, params))

    opener = threading.Thread(target=target, name="live-open", daemon=True)
    opener.start()
    opener.join(timeout + 1.0)
    what = f"camera {spec.text}" if spec.kind == "camera" else f"the stream {spec.text}"
    if not result:
        raise UserError(f"cannot open {what}: no answer within {timeout:g} s.")
    cap = result[0]
    if not cap.isOpened():
        cap.release()
        if spec.kind == "camera":
            device = spec.target if isinstance(spec.target, str) else f"/dev/video{spec.target}"
            hint = (f"{device} does not exist: is a camera connected?" if os.name == "posix"
                    and not Path(device).exists() else "is it in use by another program, and may this user read it?")
            raise UserError(f"cannot open camera {spec.text}: {hint}")
        raise UserError(f"cannot open the stream {spec.text}: it answered but sent no video OpenCV can read.")
    return cap


class CaptureSource(FrameSource):
    """A camera or a stream URL through ``cv2.VideoCapture`` (see the module docstring)."""

    def __init__(self, spec: SourceSpec, timeout: float = 5.0, max_side: int = MAX_SIDE) -> None:
        import cv2

        if spec.kind == "url":
            _check_reachable(spec.text, timeout)
        self.name = f"camera {spec.text}" if spec.kind == "camera" else spec.text
        self.max_side = max_side
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reading = False  # frames() owns the capture from its start and releases it at its end
        self._cap = _open_capture(spec, timeout)
        # One buffered frame: a camera must not hand out frames that waited in its queue.
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else FALLBACK_FPS
        self._first = self._read()
        if self._first is None:
            self.close()
            raise UserError(f"{self.name} opened but sent no frame within {timeout:g} s.")
        self.size = (self._first.shape[1], self._first.shape[0])

    def _read(self) -> np.ndarray | None:
        import cv2

        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        return _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.max_side)

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        with self._lock:
            if self._cap is None:
                return
            self._reading = True
        t0 = time.perf_counter()
        frame, count = self._first, 0
        self._first = None
        try:
            while frame is not None and not self._stop.is_set():
                count += 1
                yield time.perf_counter() - t0, frame
                frame = self._read()
            if not self._stop.is_set():  # the source itself stopped, not the user
                self.end_note = f"{self.name} stopped sending frames after {count} frames."
        finally:
            # Released here, in the reading thread: releasing a capture inside another thread's
            # read() is undefined in OpenCV, and close() must not wait out a stalled read.
            with self._lock:
                self._cap.release()
                self._cap = None

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._cap is not None and not self._reading:
                self._cap.release()
                self._cap = None


# ------------------------------------------------------------------------------------------------
# Files (PyAV)


class FileSource(FrameSource):
    """A video file, decoded with PyAV; ``realtime`` paces it at its frame rate, ``loop`` starts
    it again at its end (media time keeps counting)."""

    def __init__(self, path: str | os.PathLike, realtime: bool = False, loop: bool = False,
                 max_side: int = MAX_SIDE) -> None:
        from ..video import VideoReader

        self.reader = VideoReader(path, max_side=max_side)
        info = self.reader.info
        if info.frame_count == 0:
            raise UserError(f"{path} holds no video frames.")
        self.name = Path(path).name
        self.fps = float(info.fps)
        self.size = self.reader.output_size
        self.live = realtime
        self.realtime, self.loop = realtime, loop
        self._stop = threading.Event()

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        t_start = time.perf_counter()
        offset = 0.0
        while not self._stop.is_set():
            last = 0.0
            for seconds, image in self.reader.timed():
                last = offset + seconds
                if self.realtime:
                    delay = t_start + last - time.perf_counter()
                    if delay > 0 and self._stop.wait(delay):
                        return
                if self._stop.is_set():
                    return
                yield last, image
            if self.reader.truncated:
                self.end_note = f"{self.name} ended early: {self.reader.error}."
                return
            if not self.loop or self.reader.frames_read == 0:
                return
            offset = last + 1.0 / self.fps

    def close(self) -> None:
        self._stop.set()


def open_source(text: str | int | os.PathLike, *, realtime: bool = False, loop: bool = False,
                timeout: float = 5.0) -> FrameSource:
    """The :class:`FrameSource` for a ``--source`` value (see the module docstring).
    :class:`UserError` within about ``timeout`` seconds when it cannot be opened;
    ``realtime`` paces a file (cameras and streams deliver in real time anyway); ``loop``
    applies to files only."""
    spec = parse_source(text)
    if spec.kind == "file":
        return FileSource(spec.target, realtime=realtime, loop=loop)
    if loop:
        raise UserError(f"--loop repeats a video file; {spec.text} is a {spec.kind}.")
    return CaptureSource(spec, timeout=timeout)
