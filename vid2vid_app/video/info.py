"""Probing video files: :class:`VideoInfo`, :func:`probe`, rotation metadata, audio duration.

Also the shared helpers that open an input file with clear errors (used by the reader and the
writer's audio copy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import UserError


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


