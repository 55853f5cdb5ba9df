"""Pose extraction speed.

    python bench/pose_bench.py [--workers 1 N] [--landmarks body holistic] [--repeat 1]
    python bench/pose_bench.py --io [--clip PATH] [--max-side 0 640] [--repeat 2]

The pose pass (default): frames/s of the whole detection pass (:func:`detect_chunked`: worker
processes that decode and detect their own chunks, start-up included) for body vs holistic
landmarks and 1 vs N worker processes (N = the usable cores), on the bundled clips joined into
one video (samples/*.mp4 scaled to 360x640 and looped, 800 frames at 60 fps: long enough to be
cut into chunks), frames downscaled to 640 px as `dance train` and `dance transfer` detect them.

``--io``: decoding alone, detection alone, and both overlapped (reader thread). For each
detection size it reports frames/s of
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
import tempfile
import time
from pathlib import Path

from machine import cpu_name

from vid2vid_app.pose import detect_sequence
from vid2vid_app.video import ThreadedReader, VideoReader

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "pose2sim_singleperson_cam01.mp4"
BUNDLED = Path(__file__).resolve().parents[1] / "samples"
PASS_FRAMES = 800


def joined_clip(folder: Path) -> Path:
    """The bundled clips at 360x640, looped to PASS_FRAMES frames, as one temporary video."""
    import cv2

    from vid2vid_app.video import VideoWriter, probe

    clips = sorted(folder.glob("*.mp4"))
    path = Path(tempfile.mkdtemp(prefix="pose_bench.")) / "joined.mp4"
    written = 0
    with VideoWriter(path, probe(clips[0]).fps, quality=18, preset="veryfast") as writer:
        while written < PASS_FRAMES:
            for clip in clips:
                for frame in VideoReader(clip):
                    if written == PASS_FRAMES:
                        break
                    writer.write(cv2.resize(frame, (360, 640), interpolation=cv2.INTER_AREA))
                    written += 1
    return path


def pass_table(clip: Path, landmarks: list[str], workers: list[int], repeat: int) -> None:
    """Frames/s of the pose pass for each landmark set x worker count (best of ``repeat``)."""
    from vid2vid_app.pose.detector import DetectionStats
    from vid2vid_app.pose.parallel import detect_chunked
    from vid2vid_app.video import FrameRange, probe

    info = probe(clip)
    print(f"clip: bundled samples joined, {info.frame_count} frames {info.width}x{info.height} at "
          f"{float(info.fps):g} fps, detected at 640 px, best of {repeat}")
    print(f"{'landmarks':>10} {'workers':>8} {'chunks':>7} {'frames/s':>9} {'face':>6} {'hands L/R':>10}")
    for lm in landmarks:
        for n in workers:
            best, stats = float("inf"), DetectionStats()
            for _ in range(repeat):
                stats = DetectionStats()
                start = time.perf_counter()
                detect_chunked(FrameRange(clip, max_side=640), info.frame_count, float(info.fps),
                               (info.width, info.height), workers=n, landmarks=lm, stats=stats)
                best = min(best, time.perf_counter() - start)
            parts = (f"{100 * stats.face / stats.frames:5.0f}% {100 * stats.left_hand / stats.frames:4.0f}/"
                     f"{100 * stats.right_hand / stats.frames:.0f}%" if lm == "holistic" else f"{'-':>6} {'-':>10}")
            print(f"{lm:>10} {n:>8} {stats.chunks:>7} {info.frame_count / best:>9.1f} {parts}")


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
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (best is kept) [2; pose pass: 1]")
    parser.add_argument("--io", action="store_true", help="decode/detect/overlap table instead of the pose pass")
    parser.add_argument("--landmarks", nargs="+", default=["body", "holistic"], choices=["body", "holistic"])
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="worker counts [1 and the cores]")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {cpu_name()}, {cores} usable cores (of {os.cpu_count()}), load average "
          f"{load[0]:.1f} at start")
    if not args.io:
        workers = args.workers or sorted({1, cores})
        pass_table(joined_clip(BUNDLED), args.landmarks, workers, args.repeat or 1)
        return
    args.repeat = args.repeat or 2
    if not args.clip.exists():
        raise SystemExit(f"{args.clip} does not exist; pass --clip PATH")
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
