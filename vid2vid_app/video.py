"""Video files through PyAV: probe, decode to RGB frames, encode H.264 with optional audio.

Frames enter and leave this module as uint8 HWC RGB numpy arrays, already turned upright
(phone rotation metadata is applied while decoding). No ffmpeg binary is needed.

Main pieces:

* :func:`probe` -> :class:`VideoInfo` (frame count, fps, size after rotation, audio, ...).
* :class:`VideoReader` / :func:`iter_frames`: decode a frame range, optionally downscaled, and
  record whether the file ended early (truncated or corrupt).
* :class:`ThreadedReader`: run any iterator (e.g. decoding) in a background thread.
* :class:`VideoWriter` / :func:`write_video`: H.264 into a temp file renamed into place on
  success, odd sizes padded to even, audio copied from another file, optional background encoding.
* :func:`read_audio_duration`, :func:`resample_constant_fps`.

Variable-frame-rate input: decoding yields one output frame per decoded frame, in presentation
order, without duplicating or dropping frames; ``VideoInfo.fps`` is the average rate. Use
:meth:`VideoReader.timed` with :func:`resample_constant_fps` when real timing matters.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

import av
import numpy as np

from .errors import UserError
from .fileio import atomic_path, check_output_path

T = TypeVar("T")

#: Output containers the writer accepts (H.264 video must fit in them).
WRITER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
# Audio codecs that can be copied into each output container without re-encoding.
_MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus"}
_COPYABLE_AUDIO = {".mp4": _MP4_AUDIO, ".m4v": _MP4_AUDIO, ".mov": _MP4_AUDIO | {"pcm_s16le", "pcm_s24le"}}
# Sample rates the native AAC encoder accepts; others are resampled to 48 kHz.
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video file.

    ``width``/``height`` are the displayed size, i.e. after ``rotation`` is applied.
    ``rotation`` is the clockwise angle (0, 90, 180 or 270) by which the stored frames must be
    turned to be upright (the convention of the classic ``rotate`` tag that phones write).
    ``frame_count`` comes from the container header, or from counting packets when the header
    has none (e.g. WebM/MKV). ``fps`` is the average frame rate.
    """

    path: Path
    frame_count: int
    fps: Fraction
    width: int
    height: int
    duration: float
    codec: str
    rotation: int
    has_audio: bool


# --------------------------------------------------------------------------------------------
# Opening and probing


def _check_input_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist.")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a video file.")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path} cannot be read (permission denied).")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is an empty file (0 bytes), not a video.")
    return path


def _open_input(path: Path) -> av.container.InputContainer:
    """Open a media file for reading; any FFmpeg failure becomes one clear UserError."""
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(
            f"{path} is not a readable video file ({reason}); it may be truncated or not a video."
        ) from None


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise UserError(f"{path} has no video stream.")
    return container.streams.video[0]


def _normalise_rotation(degrees: float) -> int:
    """Snap an angle to 0/90/180/270 (display matrices can hold tiny float errors)."""
    return int(round(degrees / 90.0)) % 4 * 90


def _rotation_of(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Clockwise rotation needed to show ``frame`` upright.

    FFmpeg reports the display matrix as a counter-clockwise angle (``frame.rotation``); older
    files may only carry a ``rotate`` tag, which is already clockwise.
    """
    ccw = getattr(frame, "rotation", 0) or 0
    if ccw:
        return _normalise_rotation(-ccw)
    tag = stream.metadata.get("rotate")
    if tag:
        try:
            return _normalise_rotation(float(tag))
        except ValueError:
            return 0
    return 0


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a uint8 HWC image clockwise by ``rotation`` degrees (0/90/180/270); contiguous output."""
    k = (_normalise_rotation(rotation) // 90) % 4
    if k == 0:
        return image
    # np.rot90 turns counter-clockwise for positive k, so use -k for clockwise.
    return np.ascontiguousarray(np.rot90(image, k=-k))


def _count_packets(container: av.container.InputContainer, stream) -> int:
    """Count the video packets that carry data (cheap: no decoding)."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
    except av.error.FFmpegError:
        pass  # a damaged tail: count what is there; the reader reports the truncation
    return count


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's properties (decodes only its first frame, to learn the rotation).

    Raises :class:`UserError` for a missing path, a file that is not a video, a file with no
    video stream, or one with no decodable frame.
    """
    path = _check_input_file(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        codec = stream.codec_context.name
        has_audio = bool(container.streams.audio)
        time_base = stream.time_base
        stream_duration = float(stream.duration * time_base) if stream.duration and time_base else None
        container_duration = container.duration / av.time_base if container.duration else None
        header_frames = stream.frames or 0
        rate = stream.average_rate or stream.guessed_rate

        first = None
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError:
            pass
        if first is None:
            raise UserError(f"{path} contains no decodable video frames.")
        rotation = _rotation_of(first, stream)
        coded_w, coded_h = first.width, first.height

    frame_count = header_frames
    if frame_count <= 0:
        with _open_input(path) as container:
            frame_count = _count_packets(container, container.streams.video[0])
    if frame_count <= 0:
        raise UserError(f"{path} contains no video frames.")

    duration = stream_duration or container_duration
    if rate:
        fps = Fraction(rate)
    elif duration:
        fps = Fraction(frame_count / duration).limit_denominator(1001)
    else:
        raise UserError(f"{path} has neither a frame rate nor a duration; cannot time its frames.")
    if not duration:
        duration = float(frame_count / fps)

    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return VideoInfo(
        path=path,
        frame_count=int(frame_count),
        fps=fps,
        width=int(width),
        height=int(height),
        duration=float(duration),
        codec=codec,
        rotation=rotation,
        has_audio=has_audio,
    )


# --------------------------------------------------------------------------------------------
# Decoding


def fit_size(
    width: int, height: int, *, max_side: int | None = None, size: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Output (width, height) for a frame of ``width`` x ``height``.

    ``size`` forces an exact (w, h); ``max_side`` downscales (never upscales) so that the longer
    side is at most ``max_side``, keeping the aspect (same rounding as ``imaging.resize_max_side``).
    """
    if size is not None:
        w, h = int(size[0]), int(size[1])
        if w < 1 or h < 1:
            raise ValueError(f"size must be positive, got {size}")
        return w, h
    if max_side:
        scale = max_side / max(width, height)
        if scale < 1:
            return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


class VideoReader:
    """Decode a video file into upright uint8 HWC RGB frames.

    Args:
        path: the video file.
        max_side: downscale so the longer side is at most this (aspect kept, never upscaled).
        size: exact output (width, height) instead (mutually exclusive with ``max_side``).
        start, end, step: frame-index range ``[start, end)``, every ``step``-th frame. Indices
            count decoded frames from 0 (frames before ``start`` are decoded but not converted).

    Attributes:
        info: the :class:`VideoInfo` (probed when the reader is created).
        output_size: (width, height) of the yielded frames.
        frames_read: frames yielded by the latest pass.
        truncated: True when the latest pass stopped early because the file is damaged or cut
            short (fewer frames than the header announces, or a demux/decode error).
        error: what went wrong in that case (None otherwise).

    The reader can be iterated several times; each pass opens the file afresh. Colours are
    converted with the matrix and range the file is tagged with (BT.601 when untagged).
    Non-square pixels (anamorphic video) are not stretched to square.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        max_side: int | None = None,
        start: int = 0,
        end: int | None = None,
        step: int = 1,
        size: tuple[int, int] | None = None,
    ) -> None:
        if max_side is not None and size is not None:
            raise ValueError("pass either max_side or size, not both")
        if start < 0 or step < 1 or (end is not None and end < start):
            raise ValueError(f"bad frame range start={start} end={end} step={step}")
        self.info = probe(path)
        self.path = self.info.path
        self.start, self.end, self.step = start, end, step
        self.output_size = fit_size(self.info.width, self.info.height, max_side=max_side, size=size)
        self.frames_read = 0
        self.truncated = False
        self.error: str | None = None

    @property
    def expected_frames(self) -> int:
        """How many frames a full pass should yield (from the header's frame count)."""
        stop = self.info.frame_count if self.end is None else min(self.end, self.info.frame_count)
        return max(0, -(-(stop - self.start) // self.step))

    def __len__(self) -> int:
        return self.expected_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, image in self.timed():
            yield image

    def timed(self) -> Iterator[tuple[float, np.ndarray]]:
        """Like iterating the reader, but yield ``(seconds since the first frame, frame)``."""
        rotation = self.info.rotation
        out_w, out_h = self.output_size
        # Scale in the stored orientation, then rotate: a 90/270 turn swaps width and height.
        coded_w, coded_h = (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)
        downscale = coded_w * coded_h < self.info.width * self.info.height
        interpolation = "AREA" if downscale else "BILINEAR"

        self.frames_read, self.truncated, self.error = 0, False, None
        index = -1
        t0: float | None = None
        with _open_input(self.path) as container:
            stream = _video_stream(container, self.path)
            stream.thread_type = "AUTO"  # frame + slice threads: decoding is often the bottleneck
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        index += 1
                        if t0 is None:
                            t0 = frame.time or 0.0
                        if self.end is not None and index >= self.end:
                            return
                        if index < self.start or (index - self.start) % self.step:
                            continue
                        image = frame.to_ndarray(
                            format="rgb24",
                            width=coded_w,
                            height=coded_h,
                            interpolation=interpolation,
                            src_color_range=frame.color_range or None,
                        )
                        seconds = (frame.time - t0) if frame.time is not None else index / float(self.info.fps)
                        self.frames_read += 1
                        yield seconds, rotate_image(image, rotation)
            except av.error.FFmpegError as exc:
                self.truncated = True
                self.error = f"decoding stopped after frame {index + 1}: {getattr(exc, 'strerror', None) or exc}"
                return
        decoded = index + 1
        if decoded < self.info.frame_count:
            self.truncated = True
            self.error = f"only {decoded} of the {self.info.frame_count} frames in the header could be decoded"

    def close(self) -> None:
        """Nothing stays open between passes; kept so readers work with ``contextlib.closing``."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_frames(
    path: str | os.PathLike,
    *,
    max_side: int | None = None,
    start: int = 0,
    end: int | None = None,
    step: int = 1,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yield upright uint8 (H, W, 3) RGB frames of ``path``; see :class:`VideoReader`.

    Use a :class:`VideoReader` directly to learn afterwards whether the file was truncated.
    """
    return iter(VideoReader(path, max_side=max_side, start=start, end=end, step=step, size=size))


def resample_constant_fps(
    timed_frames: Iterable[tuple[float, np.ndarray]], fps: float | Fraction
) -> Iterator[np.ndarray]:
    """Turn ``(seconds, frame)`` pairs of a variable-frame-rate video into a constant ``fps``.

    Output frame k (at time k / fps) is the input frame nearest in time; frames are repeated or
    dropped as needed. Input times must be increasing. The last input frame is shown up to its
    own time (rounded to the nearest output tick).
    """
    period = 1.0 / float(fps)
    k = 0
    prev: tuple[float, np.ndarray] | None = None
    for t, frame in timed_frames:
        if prev is not None:
            midpoint = 0.5 * (prev[0] + t)
            while k * period < midpoint:
                yield prev[1]
                k += 1
        prev = (t, frame)
    if prev is not None:
        while k * period <= prev[0] + 0.5 * period - 1e-9:
            yield prev[1]
            k += 1


# --------------------------------------------------------------------------------------------
# Background reading


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class ThreadedReader(Generic[T]):
    """Iterate any iterable in a background thread, ``maxsize`` items ahead of the consumer.

    Decoding then overlaps whatever the consumer does with each item (pose detection, a
    generator network). An exception raised by the source is re-raised in the consumer.
    When the consumer stops early (``break``, an exception, or :meth:`close`), the thread is
    told to stop, the source is closed in that thread, and the thread is joined.

    >>> for frame in ThreadedReader(VideoReader("in.mp4")): ...

    ``source`` stays accessible (e.g. ``reader.source.truncated`` after the loop).
    """

    def __init__(self, source: Iterable[T], maxsize: int = 8) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.source = source
        self.maxsize = maxsize
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def _produce(self, items: queue.Queue, iterator: Iterator[T]) -> None:
        def put(item: object) -> bool:
            while not self._stop.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for item in iterator:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def __iter__(self) -> Iterator[T]:
        if self._thread is not None:
            raise RuntimeError("a ThreadedReader can be iterated only once")
        items: queue.Queue = queue.Queue(maxsize=self.maxsize)
        iterator = iter(self.source)
        self._thread = threading.Thread(
            target=self._produce, args=(items, iterator), name="ThreadedReader", daemon=True
        )
        self._thread.start()
        try:
            while True:
                item = items.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background thread and wait for it (safe to call more than once)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ThreadedReader[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prefetch(source: Iterable[T], maxsize: int = 8) -> ThreadedReader[T]:
    """Shorthand for :class:`ThreadedReader`."""
    return ThreadedReader(source, maxsize=maxsize)


# --------------------------------------------------------------------------------------------
# Audio passthrough


class _AudioCopy:
    """Feeds the first audio stream of another file into an output container.

    Packets are copied when the codec fits the output container, otherwise decoded and
    re-encoded to AAC. Timestamps are shifted so that output time 0 is ``offset`` seconds after
    the start of the source's video (the source's picture and sound stay in sync), and
    :meth:`mux_until` only writes audio that starts before the given time (the video's end).
    """

    def __init__(self, source: Path, output: av.container.OutputContainer, suffix: str, offset: float) -> None:
        self._input = _open_input(source)
        self._in_stream = self._input.streams.audio[0]
        video_start = 0.0
        if self._input.streams.video:
            v = self._input.streams.video[0]
            if v.start_time is not None and v.time_base:
                video_start = float(v.start_time * v.time_base)
        self._shift = video_start + offset
        codec = self._in_stream.codec_context.name
        copyable = _COPYABLE_AUDIO.get(suffix)
        self.copy = copyable is None or codec in copyable
        if self.copy:
            self._out = output.add_stream_from_template(self._in_stream)
        else:
            rate = self._in_stream.rate if self._in_stream.rate in _AAC_RATES else 48000
            layout = "mono" if self._in_stream.channels == 1 else "stereo"
            self._out = output.add_stream("aac", rate=rate)
            self._out.layout = layout
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            self._samples = 0
        self._output = output
        self._packets = self._generate()
        self._pending: av.Packet | None = None
        self._pending_time = 0.0

    def _source_packets(self) -> Iterator[av.Packet]:
        if self._shift > 0:
            tb = self._in_stream.time_base
            with contextlib.suppress(av.error.FFmpegError):
                self._input.seek(int(self._shift / tb), stream=self._in_stream, backward=True)
        try:
            yield from self._input.demux(self._in_stream)
        except av.error.FFmpegError:
            return  # damaged audio tail: keep what was copied

    def _generate(self) -> Iterator[tuple[float, av.Packet]]:
        """Yield (output time in seconds, packet ready to mux) in order."""
        if self.copy:
            tb = self._in_stream.time_base
            shift = round(self._shift / tb)
            for packet in self._source_packets():
                if packet.pts is None or packet.size == 0:
                    continue
                pts = packet.pts - shift
                if pts < 0:
                    continue
                packet.dts = (packet.dts - shift) if packet.dts is not None else pts
                packet.pts = pts
                packet.stream = self._out
                yield float(pts * tb), packet
            return
        rate = self._out.rate
        for packet in self._source_packets():
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                return
            for frame in frames:
                if frame.time is not None and frame.time + frame.samples / frame.sample_rate <= self._shift:
                    continue
                for out_frame in self._resampler.resample(frame):
                    yield from self._encode(out_frame, rate)
        for out_frame in self._resampler.resample(None):
            yield from self._encode(out_frame, rate)
        yield from self._encode(None, rate)

    def _encode(self, frame: av.AudioFrame | None, rate: int) -> Iterator[tuple[float, av.Packet]]:
        if frame is not None:
            frame.pts = self._samples
            frame.time_base = Fraction(1, rate)
            self._samples += frame.samples
        for packet in self._out.encode(frame):
            if packet.pts is None or packet.pts < 0:
                continue
            yield float(packet.pts * packet.time_base), packet

    def mux_until(self, seconds: float) -> None:
        """Write every audio packet that starts before ``seconds`` (output time)."""
        while True:
            if self._pending is None:
                nxt = next(self._packets, None)
                if nxt is None:
                    return
                self._pending_time, self._pending = nxt
            if self._pending_time >= seconds:
                return
            self._output.mux(self._pending)
            self._pending = None

    def close(self) -> None:
        self._packets.close()
        self._input.close()


def _audio_source(path: str | os.PathLike) -> Path | None:
    """The audio file to copy from, or None when it has no audio stream."""
    path = _check_input_file(path)
    with _open_input(path) as container:
        return path if container.streams.audio else None


# --------------------------------------------------------------------------------------------
# Encoding


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
        suffix = path.suffix.lower()
        if suffix not in WRITER_SUFFIXES:
            raise UserError(f"{path}: cannot write H.264 video to a '{path.suffix}' file; use one of {', '.join(WRITER_SUFFIXES)}.")
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
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._encoder = _Encoder(tmp, fps, quality, pix_fmt, preset, audio_path, audio_offset, suffix)
        self._closed = False
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=max(1, queue_size))
            self._worker = threading.Thread(target=self._work, name="VideoWriter", daemon=True)
            self._worker.start()

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

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._worker_error is not None:
                continue  # keep draining so the producer never blocks on a dead worker
            try:
                self._encoder.encode(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer thread
                self._worker_error = exc

    def _raise_worker_error(self) -> None:
        if self._worker_error is not None:
            raise self._worker_error

    def write(self, image: np.ndarray) -> None:
        """Add one uint8 (H, W, 3) RGB frame."""
        if self._closed:
            raise RuntimeError("write() on a closed VideoWriter")
        if self._queue is None:
            self._encoder.encode(image)
            return
        self._raise_worker_error()
        # Copy: the caller may reuse its buffer while the frame waits in the queue.
        self._queue.put(np.array(image, copy=True))

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def close(self) -> None:
        """Finish the file and rename it into place. Raises if no frame was written."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_worker()
            self._raise_worker_error()
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
        with contextlib.suppress(BaseException):
            self._stop_worker()
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


def read_audio_duration(path: str | os.PathLike) -> float | None:
    """Duration in seconds of the first audio stream of ``path``, or None when it has none."""
    path = _check_input_file(path)
    with _open_input(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        # No duration in the header (e.g. MKV): span of the packets.
        first = last = None
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                end = packet.pts + (packet.duration or 0)
                first = packet.pts if first is None else min(first, packet.pts)
                last = end if last is None else max(last, end)
        except av.error.FFmpegError:
            pass
        if first is None:
            return 0.0
        return float((last - first) * stream.time_base)
