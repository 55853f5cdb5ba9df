"""Pose extraction speed: decoding alone, detection alone, and both overlapped (reader thread).

    python bench/pose_bench.py [--clip PATH] [--max-side 0 640] [--repeat 2]

For each detection size it reports frames/s of
  decode      VideoReader only (PyAV decode + RGB conversion, downscaled by the decoder),
  detect      detect_sequence on frames already decoded into memory,
  end to end  detect_sequence fed by a ThreadedReader, i.e. decoding in a background thread
              overlapping detection (what `dance pose` does in its detection pass),
  serial      the same without the thread, for comparison,
and end to end as a percentage of detect alone (the goal is >= 85%). Each figure is the best of
``--repeat`` runs, the modes taking turns; graph start-up is included in every detection figure.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from machine import cpu_name

from vid2vid_app.pose import detect_sequence
from vid2vid_app.video import ThreadedReader, VideoReader

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "pose2sim_singleperson_cam01.mp4"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(clip: Path, max_side: int | None, repeat: int) -> dict[str, float]:
    """Frames/s of each mode, best of ``repeat``. The modes take turns within each repeat, so a
    change in background load hits them alike."""
    reader = VideoReader(clip, max_side=max_side)
    size = (reader.info.width, reader.info.height)
    fps = float(reader.info.fps)
    n = reader.expected_frames
    frames = list(VideoReader(clip, max_side=max_side))
    modes = {
        "decode": lambda: sum(1 for _ in VideoReader(clip, max_side=max_side)),
        "detect": lambda: detect_sequence(frames, fps, size),
        "e2e": lambda: detect_sequence(ThreadedReader(VideoReader(clip, max_side=max_side)), fps, size),
        "serial": lambda: detect_sequence(VideoReader(clip, max_side=max_side), fps, size),
    }
    best = {name: float("inf") for name in modes}
    for _ in range(repeat):
        for name, fn in modes.items():
            best[name] = min(best[name], timed(fn))
    result = {name: n / t for name, t in best.items()}
    result.update(frames=n, size=reader.output_size)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video to decode (default: a 1080x1920 sample)")
    parser.add_argument("--max-side", type=int, nargs="+", default=[0, 640],
                        help="detection sizes to try (0 = full resolution)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (best is kept)")
    args = parser.parse_args()
    if not args.clip.exists():
        raise SystemExit(f"{args.clip} does not exist; pass --clip PATH")

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {cpu_name()}, {cores} usable cores (of {os.cpu_count()}), load average "
          f"{load[0]:.1f} at start")
    print(f"config: {args.clip.name}, MediaPipe Pose model_complexity=1, tracking mode, best of {args.repeat}")
    print()
    print(f"{'detect size':>12} {'frames':>6} {'decode':>9} {'detect':>9} {'end to end':>11} {'serial':>9} {'e2e/detect':>11}")
    for max_side in args.max_side:
        r = bench(args.clip, max_side or None, args.repeat)
        w, h = r["size"]
        print(f"{f'{w}x{h}':>12} {r['frames']:>6} {r['decode']:>7.1f}/s {r['detect']:>7.1f}/s "
              f"{r['e2e']:>9.1f}/s {r['serial']:>7.1f}/s {100 * r['e2e'] / r['detect']:>10.0f}%")
    print("\n(frames per second; end to end = decoding in a reader thread overlapping detection)")


if __name__ == "__main__":
    main()
