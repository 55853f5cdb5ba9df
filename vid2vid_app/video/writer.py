"""Encoding: :class:`VideoWriter` / :func:`write_video` (H.264, atomic, odd sizes padded, optional
audio from another file, optional background encoding)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import UserError
from ..fileio import atomic_path, check_output_path, os_error_message
from .audio import _audio_source, _AudioCopy
from .threaded import ThreadedConsumer

#: Output containers the writer accepts (H.264 video must fit in them).
WRITER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")


def check_video_suffix(path: Path) -> str:
    """The lower-case suffix of ``path``, or a :class:`UserError` when H.264 cannot go in such a file
    (checked before any work, so a wrong name fails in a second rather than after the whole job)."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITER_SUFFIXES:
        raise UserError(f"{path}: cannot write H.264 video to a '{Path(path).suffix}' file; "
                        f"use one of {', '.join(WRITER_SUFFIXES)}.")
    return suffix


class _Encoder:
    """The single-threaded encoding work behind :class:`VideoWriter` (opens on the first frame)."""

    def __init__(self, tmp: Path, fps: Fraction, quality: int, pix_fmt: str, preset: str,
                 audio_from: Path | None, audio_offset: float, suffix: str) -> None:
        self.tmp, self.fps, self.quality, self.pix_fmt, self.preset = tmp, fps, quality, pix_fmt, preset
        self.audio_from, self.audio_offset, self.suffix = audio_from, audio_offset, suffix
        self.container: av.container.OutputContainer | None = None
        self.stream = None
        self.audio: _AudioCopy | None = None
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (w, h) of the frames as given
        self.encoded_size: tuple[int, int] | None = None  # (w, h) after padding to even

    def _open(self, width: int, height: int) -> None:
        options = {"movflags": "+faststart"} if self.suffix in (".mp4", ".m4v", ".mov") else {}
        self.container = av.open(str(self.tmp), mode="w", options=options)
        stream = self.container.add_stream("libx264", rate=self.fps)
        # yuv420p needs even dimensions: pad by repeating the last row/column (no stretching).
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = self.pix_fmt
        stream.codec_context.time_base = Fraction(1) / self.fps
        stream.options = {"crf": str(self.quality), "preset": self.preset}
        # x264's frame threads instead of PyAV's default slice threads: 360x640 at CRF 18 "medium"
        # encoded at 159 instead of 110 frames/s on 2 cores, and frame threads scale with more cores.
        stream.codec_context.thread_type = "FRAME"
        # Tag BT.709 limited range, the conversion used in encode() (players assume it for HD).
        cc = stream.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = 1, 1, 1, 1
        self.stream = stream
        self.size = (width, height)
        self.encoded_size = (stream.width, stream.height)
        if self.audio_from is not None:
            self.audio = _AudioCopy(self.audio_from, self.container, self.suffix, self.audio_offset)

    def encode(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB frame, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        if self.container is None:
            self._open(w, h)
        elif (w, h) != self.size:
            raise ValueError(f"frame {self.frames} is {w}x{h} but the video is {self.size[0]}x{self.size[1]}")
        ew, eh = self.encoded_size
        if (ew, eh) != (w, h):
            image = np.pad(image, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = frame.reformat(format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.pts = self.frames
        frame.time_base = self.stream.codec_context.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        if self.audio is not None:
            self.audio.mux_until(float(self.frames / self.fps))

    def finish(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        if self.audio is not None:
            self.audio.mux_until(float(self.frames / self.fps))
            self.audio.close()
        self.container.close()

    def abort(self) -> None:
        if self.audio is not None:
            with contextlib.suppress(Exception):
                self.audio.close()
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()


class VideoWriter:
    """Write uint8 HWC RGB frames to an H.264 video (context manager).

    Args:
        path: output file (.mp4, .m4v, .mov or .mkv). Refused if it exists, unless ``overwrite``.
        fps: frame rate (Fraction, int or float; 29.97 is kept as 2997/100).
        quality: x264 CRF (0 = lossless, 18 = visually lossless, 23 = x264's default, 51 = worst).
        audio_from: copy the first audio stream of this file (usually the source video), trimmed
            to the written video's length. A file without audio just gives a silent video.
        audio_offset: seconds into ``audio_from`` where the output starts (when the frames are a
            later part of that video).
        pix_fmt: encoder pixel format; ``yuv420p`` plays everywhere.
        preset: x264 speed/size trade-off (``ultrafast`` ... ``veryslow``).
        threaded: encode in a background thread so encoding overlaps the producer's work;
            :meth:`write` then only queues the frame (up to ``queue_size`` frames ahead), and
            encoding errors surface at a later :meth:`write` or at :meth:`close`.

    All frames must have the size of the first. Odd widths/heights are padded to even by
    repeating the last column/row; ``size`` keeps the size of the given frames and
    ``encoded_size`` the padded one. The file is written to a temp file beside ``path`` and
    renamed into place by :meth:`close`; if the ``with`` block raises, or no frame was written,
    nothing is left at ``path``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | Fraction,
        *,
        quality: int = 18,
        audio_from: str | os.PathLike | None = None,
        audio_offset: float = 0.0,
        overwrite: bool = False,
        pix_fmt: str = "yuv420p",
        preset: str = "medium",
        threaded: bool = False,
        queue_size: int = 8,
    ) -> None:
        path = Path(path)
        suffix = check_video_suffix(path)
        if not 0 <= quality <= 51:
            raise ValueError(f"quality (CRF) must be in [0, 51], got {quality}")
        fps = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        audio_path = None
        if audio_from is not None:
            if Path(audio_from).resolve() == path.resolve():
                raise UserError(f"{path} is also the audio source; choose a different output file.")
            audio_path = _audio_source(audio_from)
        self.path = check_output_path(path, overwrite)
        self.fps = fps
        self._stack = contextlib.ExitStack()
        # Without --overwrite, a file that another program created meanwhile is not replaced.
        tmp = self._stack.enter_context(atomic_path(self.path, replace=overwrite))
        self._encoder = _Encoder(tmp, fps, quality, pix_fmt, preset, audio_path, audio_offset, suffix)
        self._closed = False
        self._worker = ThreadedConsumer(self._encoder.encode, queue_size, name="VideoWriter") if threaded else None

    # Properties mirror the encoder (valid after the first frame).
    @property
    def frames_written(self) -> int:
        return self._encoder.frames

    @property
    def size(self) -> tuple[int, int] | None:
        return self._encoder.size

    @property
    def encoded_size(self) -> tuple[int, int] | None:
        return self._encoder.encoded_size

    @property
    def has_audio(self) -> bool:
        return self._encoder.audio_from is not None

    def write(self, image: np.ndarray) -> None:
        """Add one uint8 (H, W, 3) RGB frame."""
        if self._closed:
            raise RuntimeError("write() on a closed VideoWriter")
        try:
            if self._worker is None:
                self._encoder.encode(image)
            else:
                # Copy: the caller may reuse its buffer while the frame waits in the queue.
                self._worker.put(np.array(image, copy=True))
        except OSError as exc:
            # A full disk or a vanished folder: name the output, not its hidden temp file.
            if exc.filename is not None and Path(str(exc.filename)).name != self._encoder.tmp.name:
                raise
            raise UserError(os_error_message(exc, self.path)) from None

    def close(self) -> None:
        """Finish the file and rename it into place. Raises if no frame was written."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._worker is not None:
                self._worker.close()  # every queued frame encoded; re-raises an encoding error
            if self._encoder.frames == 0:
                raise UserError(f"no frames were written to {self.path}; nothing was saved.")
            self._encoder.finish()
        except BaseException as exc:
            self._encoder.abort()
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack.close()

    def abort(self) -> None:
        """Stop without saving: the temp file is removed and ``path`` is left untouched."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            with contextlib.suppress(BaseException):
                self._worker.close()
        self._encoder.abort()
        error = RuntimeError("aborted")
        with contextlib.suppress(RuntimeError):
            self._stack.__exit__(RuntimeError, error, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its temp file or thread behind.
        if not getattr(self, "_closed", True):
            self.abort()


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float | Fraction, **kwargs: Any) -> Path:
    """Write all ``frames`` (uint8 HWC RGB) to ``path``; keyword arguments as :class:`VideoWriter`."""
    with VideoWriter(path, fps, **kwargs) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path
