"""Video files through PyAV: probe, decode to RGB frames, encode H.264 with optional audio.

Frames enter and leave this module as uint8 HWC RGB numpy arrays, already turned upright
(phone rotation metadata is applied while decoding). No ffmpeg binary is needed.

Main pieces:

* :func:`probe` -> :class:`VideoInfo` (frame count, fps, size after rotation, audio, ...).
* :class:`VideoReader` / :func:`iter_frames`: decode a frame range, optionally downscaled, and
  record whether the file ended early (truncated or corrupt).
* :func:`frames_at`: a few frames of a long video by seeking (first looks, plates).
* :class:`ThreadedReader`: run any iterator (e.g. decoding) in a background thread.
* :class:`VideoWriter` / :func:`write_video`: H.264 into a temp file renamed into place on
  success, odd sizes padded to even, audio copied from another file, optional background encoding.

One module per job: ``info`` (probe), ``reader`` (decode), ``threaded`` (background
iteration), ``writer`` (encode) and ``audio`` (audio passthrough for the writer).

Variable-frame-rate input: decoding yields one output frame per decoded frame, in presentation
order, without duplicating or dropping frames; ``VideoInfo.fps`` is the average rate. Use
:meth:`VideoReader.timed` (each frame with its time) when real timing matters.
"""

from __future__ import annotations

from .info import VideoInfo, probe, rotate_image
from .reader import FrameRange, VideoReader, fit_size, frames_at, iter_frames
from .threaded import ThreadedConsumer, ThreadedReader, prefetch
from .writer import WRITER_SUFFIXES, VideoWriter, check_video_suffix, write_video

__all__ = [
    "WRITER_SUFFIXES",
    "check_video_suffix",
    "ThreadedConsumer",
    "ThreadedReader",
    "FrameRange",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "fit_size",
    "frames_at",
    "iter_frames",
    "prefetch",
    "probe",
    "rotate_image",
    "write_video",
]
