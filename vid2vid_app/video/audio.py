"""Audio passthrough for the writer: copy (or re-encode to AAC) another file's audio, trimmed and
shifted to the written video."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from .info import _check_input_file, _open_input

# Audio codecs that can be copied into each output container without re-encoding.
_MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus"}
_COPYABLE_AUDIO = {".mp4": _MP4_AUDIO, ".m4v": _MP4_AUDIO, ".mov": _MP4_AUDIO | {"pcm_s16le", "pcm_s24le"}}
# Sample rates the native AAC encoder accepts; others are resampled to 48 kHz.
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000}


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
