"""Decoding: :class:`VideoReader` / :func:`iter_frames` (upright uint8 HWC RGB frames, with their
times from :meth:`VideoReader.timed` for variable-frame-rate input)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import av
import numpy as np

from .info import _open_input, _video_stream, probe, rotate_image


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
        to_image = _converter(self.info, self.output_size)
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
                        seconds = (frame.time - t0) if frame.time is not None else index / float(self.info.fps)
                        self.frames_read += 1
                        yield seconds, to_image(frame)
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


def _converter(info, output_size: tuple[int, int]):
    """A function turning a decoded frame of the video ``info`` describes into an upright uint8
    (H, W, 3) RGB image of ``output_size`` (width, height)."""
    rotation = info.rotation
    out_w, out_h = output_size
    # Scale in the stored orientation, then rotate: a 90/270 turn swaps width and height.
    coded_w, coded_h = (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)
    interpolation = "AREA" if coded_w * coded_h < info.width * info.height else "BILINEAR"

    def to_image(frame: av.VideoFrame) -> np.ndarray:
        image = frame.to_ndarray(format="rgb24", width=coded_w, height=coded_h, interpolation=interpolation,
                                 src_color_range=frame.color_range or None)
        return rotate_image(image, rotation)

    return to_image


def frames_at(path: str | os.PathLike, indices: list[int], *, max_side: int | None = None) -> list[np.ndarray]:
    """The frames numbered ``indices`` (ascending) of ``path``, each reached by seeking to the key
    frame before it and decoding from there: a few frames spread over a long video cost a few
    key-frame intervals of decoding instead of the whole file. Frame numbers become times at the
    average frame rate (exact for a constant rate; a variable-rate video gets the frames at those
    times). A file that cannot seek is decoded from the start instead; frames past its end are
    left out."""
    try:
        return _seek_frames(path, indices, max_side)
    except av.error.FFmpegError:
        wanted = set(indices)
        reader = VideoReader(path, max_side=max_side, end=max(indices, default=-1) + 1)
        return [frame for i, frame in enumerate(reader) if i in wanted]


def _seek_frames(path: str | os.PathLike, indices: list[int], max_side: int | None) -> list[np.ndarray]:
    """:func:`frames_at` by seeking (FFmpeg errors are raised)."""
    info = probe(path)
    to_image = _converter(info, fit_size(info.width, info.height, max_side=max_side))
    frames = []
    with _open_input(info.path) as container:
        stream = _video_stream(container, info.path)
        stream.thread_type = "AUTO"
        first = stream.start_time or 0
        step = 1 / (float(info.fps) * stream.time_base)  # one frame in stream time units
        for index in indices:
            target = first + index * step
            container.seek(int(target), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts >= target - step / 2:
                    frames.append(to_image(frame))
                    break
    return frames


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


class FrameRange:
    """A picklable recipe for the frames ``[start, end)`` of a video: ``FrameRange(path,
    max_side=640)(100, 200)`` yields those frames as :class:`VideoReader` would, so a worker
    process can decode its own part of a video.

    max_side / size: as for :class:`VideoReader`. crop: (x, y, w, h) in the video's own pixels;
    each frame is cut to that region after scaling (the region scaled alike). start, end: only
    this part ``[start, end)`` of the video, whose frame ``start`` is then frame 0 of the range.
    ``output_size`` is the (width, height) of the yielded frames, ``frame_count`` how many the
    header promises.
    """

    def __init__(self, path: str | os.PathLike, *, max_side: int | None = None,
                 size: tuple[int, int] | None = None, crop: tuple[int, int, int, int] | None = None,
                 start: int = 0, end: int | None = None) -> None:
        self.path = os.fspath(path)
        self.max_side, self.size = max_side, size
        self.crop = None if crop is None else tuple(int(v) for v in crop)
        self.start, self.end = int(start), end
        info = probe(self.path)
        self.frame_count = max(0, (info.frame_count if end is None else min(end, info.frame_count)) - self.start)
        scaled = fit_size(info.width, info.height, max_side=max_side, size=size)
        self._scale = (scaled[0] / info.width, scaled[1] / info.height)
        self.output_size = scaled if crop is None else self._crop_box()[2:]

    def _crop_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, w, h) of the crop in the scaled frames."""
        x, y, w, h = self.crop
        sx, sy = self._scale
        x0, y0 = round(x * sx), round(y * sy)
        x1, y1 = max(x0 + 1, round((x + w) * sx)), max(y0 + 1, round((y + h) * sy))
        return x0, y0, x1 - x0, y1 - y0

    def __call__(self, start: int = 0, end: int | None = None) -> Iterator[np.ndarray]:
        """Frames ``[start, end)`` of the range (``end`` None: to the range's end)."""
        stop = None if end is None else self.start + end
        if self.end is not None:
            stop = self.end if stop is None else min(stop, self.end)
        reader = VideoReader(self.path, max_side=self.max_side, size=self.size, start=self.start + start, end=stop)
        if self.crop is None:
            yield from reader
            return
        x0, y0, w, h = self._crop_box()
        for frame in reader:
            yield np.ascontiguousarray(frame[y0 : y0 + h, x0 : x0 + w])
