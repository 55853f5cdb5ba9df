"""Helpers for tests and benchmarks that need small real video files (built with PyAV)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def smooth_frames(count: int, width: int = 96, height: int = 80, seed: int = 0) -> list[np.ndarray]:
    """``count`` uint8 (height, width, 3) RGB frames: colour gradients plus a soft moving disk.

    Smooth content compresses well, so a good encoder round trip stays above 35 dB PSNR.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    frames = []
    for i in range(count):
        t = i / max(1, count)
        r = 127 + 80 * np.sin(2 * np.pi * xx / width + phase[0] + t)
        g = 127 + 80 * np.cos(2 * np.pi * yy / height + phase[1] - t)
        b = 127 + 60 * np.sin(2 * np.pi * (xx + yy) / (width + height) + phase[2])
        cx, cy = width * (0.25 + 0.5 * t), height * 0.5
        disk = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * min(width, height)) ** 2))
        img = np.stack([r, g, b], axis=-1) * (1 - 0.5 * disk[..., None]) + 240 * 0.5 * disk[..., None]
        frames.append(np.clip(img, 0, 255).round().astype(np.uint8))
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


_ONE = 1 << 16
_W = 1 << 30
#: MP4 display matrices that ask players to turn the stored picture clockwise by the key's
#: angle. 90 is what phones write for portrait video: (a, b, c, d) = (0, 1, -1, 0).
PHONE_MATRICES = {
    90: (0, _ONE, 0, -_ONE, 0, 0, 0, 0, _W),
    180: (-_ONE, 0, 0, 0, -_ONE, 0, 0, 0, _W),
    270: (0, -_ONE, 0, _ONE, 0, 0, 0, 0, _W),
}


def read_tkhd_matrix(path: str | Path) -> tuple[int, ...]:
    """The 9 matrix entries of the first ``tkhd`` box of an MP4 file, read from its bytes."""
    import struct

    data = Path(path).read_bytes()
    at = data.find(b"tkhd") + 4
    version = data[at]
    # version/flags, times + track id + reserved + duration, reserved, layer/group/volume/reserved
    offset = at + 4 + (32 if version == 1 else 20) + 8 + 8
    return struct.unpack(">9i", data[offset : offset + 36])


def make_vfr_clip(path: str | Path, frames: list[np.ndarray], times_ms: list[int]) -> Path:
    """Encode ``frames`` with the given presentation times (milliseconds): variable frame rate."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        h, w = frames[0].shape[:2]
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        video.options = {"crf": "10", "preset": "ultrafast", "bf": "0"}
        for image, t in zip(frames, times_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = t
            frame.time_base = Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def make_test_clip(
    path: str | Path,
    frames: list[np.ndarray],
    fps: float | Fraction = 25,
    *,
    with_audio: bool = False,
    audio_codec: str = "aac",
    audio_seconds: float | None = None,
    display_matrix: tuple[int, ...] | None = None,
    codec: str = "libx264",
    faststart: bool = True,
) -> Path:
    """Encode ``frames`` (uint8 HWC RGB, even sizes) into ``path`` independently of the library.

    ``with_audio`` adds a 440 Hz mono sine track (``audio_codec`` at 44.1 kHz) lasting
    ``audio_seconds`` (default: the video's length). ``display_matrix`` (9 ints, the MP4 ``tkhd``
    layout: a, b, u, c, d, v, x, y, w with 16.16 fixed point) stores a rotation as phones do;
    see :data:`PHONE_MATRICES`.
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if faststart and path.suffix in (".mp4", ".mov") else {}
    with av.open(str(path), "w", options=options) as container:
        h, w = frames[0].shape[:2]
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "10", "preset": "ultrafast"}
        if display_matrix is not None:
            video.set_display_matrix(list(display_matrix))
        audio = None
        rate = 44100
        if with_audio:
            audio = container.add_stream(audio_codec, rate=rate)
            audio.layout = "mono"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1) / fps
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            seconds = audio_seconds if audio_seconds is not None else len(frames) / fps
            total = int(round(float(seconds) * rate))
            fmt = audio.codec_context.format.name
            chunk = 1024
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                t = (np.arange(start, start + n) / rate).astype(np.float32)
                wave = 0.3 * np.sin(2 * np.pi * 440 * t)
                if fmt.startswith("s16"):
                    samples = (wave * 32767).astype(np.int16)[None]
                else:
                    samples = wave.astype(np.float32)[None]
                aframe = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
                aframe.sample_rate = rate
                aframe.pts = start
                aframe.time_base = Fraction(1, rate)
                for packet in audio.encode(aframe):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
    return path


def read_audio_duration(path: str | Path) -> float | None:
    """Duration in seconds of the first audio stream of ``path``, or None when it has none."""
    with av.open(str(path)) as container:
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
        except av.error.FFmpegError:  # a damaged file: the span of the packets read
            pass
        return 0.0 if first is None else float((last - first) * stream.time_base)
