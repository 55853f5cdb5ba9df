"""Video I/O throughput: decode, encode, and how much a background thread hides them.

    python bench/video_bench.py [--samples ../shared/samples] [--frames 100]

Prints frames/s for: decoding the 1080x1920 sample clips (full size and --max-side), H.264
encoding at two sizes, and a decode -> "work" -> encode loop run plainly and with
ThreadedReader + a threaded VideoWriter. The "work" is a fixed sleep standing in for a
detector or generator that releases the GIL (as PyTorch and MediaPipe do).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name

from vid2vid_app.video import ThreadedReader, VideoReader, VideoWriter


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:7.1f} frames/s ({count} frames, {seconds:.2f} s)"


def bench_decode(path: Path, max_side: int | None) -> None:
    reader = VideoReader(path, max_side=max_side)
    t = time.perf_counter()
    n = sum(1 for _ in reader)
    label = f"decode {path.name} ({reader.info.codec}) -> {reader.output_size[0]}x{reader.output_size[1]}"
    print(f"{label:62s} {rate(n, time.perf_counter() - t)}")


def bench_encode(folder: Path, w: int, h: int, count: int, preset: str) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    frames = [np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), i, axis=1) for i in range(count)]
    out = folder / f"enc_{w}x{h}.mp4"
    t = time.perf_counter()
    with VideoWriter(out, 30, preset=preset, overwrite=True) as writer:
        for f in frames:
            writer.write(f)
    print(f"{f'encode {w}x{h} libx264 crf 18 preset {preset}':62s} {rate(count, time.perf_counter() - t)}")


def pipeline(path: Path, out: Path, work_s: float, threaded: bool, max_side: int) -> float:
    reader = VideoReader(path, max_side=max_side)
    frames = ThreadedReader(reader, maxsize=8) if threaded else reader
    t = time.perf_counter()
    with VideoWriter(out, reader.info.fps, preset="veryfast", overwrite=True, threaded=threaded) as writer:
        for frame in frames:
            time.sleep(work_s)
            writer.write(frame)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "samples")
    parser.add_argument("--frames", type=int, default=100, help="frames to encode per size")
    parser.add_argument("--work-ms", type=float, default=20.0, help="simulated per-frame work")
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    clips = [args.samples / f"pose2sim_singleperson_cam0{i}.mp4" for i in (1, 2)]
    for clip in clips:
        for max_side in (None, 512):
            bench_decode(clip, max_side)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for w, h in ((512, 256), (1024, 512)):
            bench_encode(folder, w, h, args.frames, "medium")
        work = args.work_ms / 1000
        n = VideoReader(clips[0]).info.frame_count
        plain = pipeline(clips[0], folder / "plain.mp4", work, False, 512)
        overlapped = pipeline(clips[0], folder / "threaded.mp4", work, True, 512)
        print(f"decode(max side 512) -> {args.work_ms:.0f} ms work -> encode, {n} frames:")
        print(f"  work alone          {1 / work:7.1f} frames/s")
        print(f"  plain loop          {rate(n, plain)}")
        print(f"  threaded I/O        {rate(n, overlapped)}  = {100 * plain / overlapped - 100:.0f}% faster, "
              f"{100 * n * work / overlapped:.0f}% of the work-alone rate")


if __name__ == "__main__":
    main()
