"""Rebuild the small demo inputs in samples/ from the full-size clips in ../shared/samples.

The committed files are downscaled copies (longer side 640 px, H.264) of the BSD-3-Clause Pose2Sim
demo clips and 640x400 copies of two LGPL-3.0 Plasma wallpapers, so the demo runs without ../shared.
The two-person source clip gets a synthetic two-tone melody as its audio track so the demo shows
the source's audio surviving motion transfer.

Usage: python samples/make_samples.py [SHARED_SAMPLES_DIR]
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
MAX_SIDE = 640

CLIPS = {
    "target_cam01.mp4": "pose2sim_singleperson_cam01.mp4",
    "target_cam02.mp4": "pose2sim_singleperson_cam02.mp4",
    "target_cam03.mp4": "pose2sim_singleperson_cam03.mp4",
    "source_two_people.mp4": "pose2sim_multiperson_cam01.mp4",
}
PHOTOS = {
    "daynight/dusk_EveningGlow.jpg": "daynight/plasma_EveningGlow_2560x1600.jpg",
    "daynight/day_Path.jpg": "daynight/plasma_Path_2560x1600.jpg",
}


def even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def downscale_clip(src: Path, dst: Path, with_tone: bool) -> None:
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        fps = vin.average_rate or Fraction(30)
        scale = MAX_SIDE / max(vin.width, vin.height)
        w, h = even(vin.width * scale), even(vin.height * scale)
        with av.open(str(dst), "w") as out:
            vout = out.add_stream("libx264", rate=fps)
            vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
            vout.options = {"crf": "23", "preset": "slow"}
            # Every stream must exist before the first packet is written.
            aout = add_audio_stream(out) if with_tone else None
            n = 0
            for frame in inp.decode(vin):
                rgb = cv2.resize(frame.to_ndarray(format="rgb24"), (w, h), interpolation=cv2.INTER_AREA)
                out.mux(vout.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
                n += 1
            out.mux(vout.encode())
            if aout is not None:
                write_tone(out, aout, seconds=n / float(fps))
    print(f"{dst.name}: {w}x{h}, {n} frames at {fps} fps")


def add_audio_stream(container, rate: int = 44100):
    stream = container.add_stream("aac", rate=rate)
    stream.layout = "mono"
    return stream


def write_tone(container, stream, seconds: float) -> None:
    """A quiet alternating two-note melody (A4 / E5), AAC mono."""
    rate = stream.rate
    t = np.arange(int(seconds * rate)) / rate
    freq = np.where((t * 4).astype(int) % 2 == 0, 440.0, 659.25)
    samples = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    chunk = 1024
    for i in range(0, len(samples), chunk):
        frame = av.AudioFrame.from_ndarray(samples[None, i : i + chunk], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "shared" / "samples"
    for dst, src in CLIPS.items():
        downscale_clip(shared / src, HERE / dst, with_tone=dst.startswith("source"))
    for dst, src in PHOTOS.items():
        img = cv2.imread(str(shared / src))
        (HERE / dst).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(HERE / dst), cv2.resize(img, (640, 400), interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"{dst}: 640x400")


if __name__ == "__main__":
    main()
