"""Benchmark: `dance transfer` end to end against its three stages, each measured alone.

For each config a model file with random weights is written (throughput does not depend on
the weights' values) for the bundled target clip, then on the source clip:

- pose detection alone: what the transfer's pose step does on its own
  (:func:`vid2vid_app.dance.transfer.detect_source_poses`: decode, MediaPipe with the model's
  landmarks over ``--workers`` processes, gap filling, smoothing);
- generation alone: the generator, frame by frame with the previous output fed back, on stick
  figures rendered beforehand and kept in memory;
- encoding alone: x264 writing frames generated beforehand, at the output size, with the same
  preset (open, write, close);
- end to end: :func:`vid2vid_app.dance.transfer.transfer`, streamed (the default: generation
  starts while the source is detected) and ``--whole-clip`` (detect everything, then generate,
  as earlier versions did), with the ratio of each to the slowest stage alone.

On a CPU the stages share the cores: detection keeps about one core busy per detector process
(Holistic about 1.25), the generator the others, so end to end cannot beat (work of all stages) /
cores however well they overlap; the figures say how close it comes. Each measurement runs
``--repeats`` times, interleaved, and the best counts (other work only ever slows a run).

Configs: ``tiny`` = the tiny preset's final generator (local enhancer, ngf 8 / 16, 128x256
canvas for the portrait sample); ``standard`` = the standard preset's global generator (ngf 64,
4 downsamplings, 9 residual blocks) at 512x256 (256x512 portrait); ``standard-local`` = its
local enhancer at 1024x512 (GPU only by default: seconds per frame on a CPU).

    python bench/transfer_bench.py [--device cpu|cuda] [--configs tiny,standard] [--frames N]
                                   [--loop N] [--repeats 3] [--threads N] [--workers N]
                                   [--landmarks body|holistic] [--target-poses KEYPOINTS.npz]

``--loop N`` transfers the source clip repeated N times (a longer source: the fixed costs of a
run, and the look-ahead before the first frame, weigh less). ``--landmarks`` overrides the
tiny preset's holistic landmarks. ``--target-poses`` reads the target's keypoints (its body
statistics go into the model file) instead of detecting them, e.g.
bench/data/target_pose/keypoints.npz for the bundled target.

On CUDA every timing waits for the GPU (torch.cuda.synchronize, or the copy of each generated
frame back to the CPU in the pipeline), and the generator runs as `dance transfer` runs it
(DanceModel.generate: inference_mode, bf16/fp16 autocast, channels_last, cuDNN autotuning).
The CUDA path is the same code; it has not been measured on this project's machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import vid2vid_app.cli  # noqa: F401  (the commands' OpenMP settings, set before torch loads)

# isort: split
import numpy as np
import torch
from machine import cpu_name

from vid2vid_app.dance.config import make_config
from vid2vid_app.dance.model import DanceModel, save_dance_model
from vid2vid_app.dance.transfer import (
    TransferOptions,
    content_crop,
    detect_source_poses,
    read_source_poses,
    to_target_poses,
    transfer,
)
from vid2vid_app.device import resolve_device
from vid2vid_app.imaging import letterbox_geometry, to_tensor, to_uint8
from vid2vid_app.models import build_generator
from vid2vid_app.pose import RenderStyle, compute_stats
from vid2vid_app.video import VideoWriter, iter_frames, probe

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"

CONFIGS = {
    # name: (generator keywords, canvas (w, h) for the portrait sample)
    "tiny": (dict(arch="local", ngf=8, n_downsample=3, n_blocks=3, n_blocks_local=1), (128, 256)),
    "standard": (dict(arch="global", ngf=64, n_downsample=4, n_blocks=9), (256, 512)),
    "standard-local": (dict(arch="local", ngf=32, n_downsample=4, n_blocks=9, n_blocks_local=3), (512, 1024)),
}


def machine() -> str:
    cpu = cpu_name()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), load {load}"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def make_model(path: Path, name: str, target: Path, target_stats, landmarks: str | None = None) -> Path:
    kwargs, canvas = CONFIGS[name]
    torch.manual_seed(0)
    g = build_generator(in_channels=6, out_channels=3, init="normal", **kwargs)
    info = probe(target)
    size = (info.width, info.height)
    config = make_config("tiny", **({"landmarks": landmarks} if landmarks else {}))
    return save_dance_model(path, generator=g, face_generator=None, config=config,
                            target_stats=target_stats, render_style=RenderStyle(), target_size=size,
                            resolution=canvas, letterbox=letterbox_geometry(*size, *canvas), stage="global")


def looped(source: Path, times: int, folder: Path) -> Path:
    """``source`` repeated ``times`` times (frames only), re-encoded at its frame rate."""
    if times <= 1:
        return source
    info, frames = probe(source), list(iter_frames(source))
    out = folder / f"{source.stem}_x{times}.mp4"
    with VideoWriter(out, info.fps, quality=12, preset="veryfast") as writer:
        for _ in range(times):
            for frame in frames:
                writer.write(frame)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def generator_only(model: DanceModel, keypoints: np.ndarray, warmup: int = 3) -> tuple[float, list[np.ndarray]]:
    """Frames/s of the generator alone (inputs prepared in memory beforehand), with cuDNN
    autotuning on a GPU as the pipeline (run_generation) has it; and the generated frames
    (uint8 output-size images, for the encoding stage)."""
    poses = [to_tensor(model.render(kp)).to(model.device) for kp in keypoints]
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark or model.device.type == "cuda"
    try:
        prev = None
        for pose in poses[:warmup]:
            prev = model.generate(pose, prev)
        sync(model.device)
        prev, outputs = None, []
        t = time.perf_counter()
        for pose in poses:
            prev = model.generate(pose, prev)
            outputs.append(prev)
        sync(model.device)
        rate = len(poses) / (time.perf_counter() - t)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    return rate, [content_crop(to_uint8(out)[0], model.letterbox) for out in outputs]


def encoding_only(frames: list[np.ndarray], out: Path, fps: float, encoder_preset: str) -> float:
    """Frames/s of x264 writing ``frames`` (generated beforehand) with ``encoder_preset``."""
    t = time.perf_counter()
    with VideoWriter(out, fps, overwrite=True, preset=encoder_preset) as writer:
        for frame in frames:
            writer.write(frame)
    return len(frames) / (time.perf_counter() - t)


def pose_only(source: Path, frames: int, landmarks: str, workers: int | None) -> float:
    """Frames/s of the transfer's pose step alone (decode, detect, fill gaps, smooth)."""
    t = time.perf_counter()
    detect_source_poses(source, 0, frames, quiet=True, landmarks=landmarks, workers=workers)
    return frames / (time.perf_counter() - t)


def end_to_end(source: Path, model: DanceModel, out: Path, frames: int, args, whole_clip: bool) -> float:
    """Frames/s of transfer() from start to finish (streamed, or with ``whole_clip``)."""
    report = transfer(source, model, out, TransferOptions(end=frames, quiet=True, overwrite=True, whole_clip=whole_clip,
                                                          encoder_preset=args.encoder_preset, workers=args.workers))
    return report.frames / report.total_seconds


def measure(name: str, model: DanceModel, source: Path, frames: int, args, tmp: Path) -> dict[str, float]:
    """Best of ``args.repeats`` interleaved runs of every figure for one config."""
    src = probe(source)
    poses = detect_source_poses(source, 0, frames, quiet=True, landmarks=model.landmarks, workers=args.workers)
    keypoints = to_target_poses(poses, model.target_size, model.target_stats, True)
    best = dict.fromkeys(("pose", "generator", "encoder", "whole", "stream"), 0.0)
    for _ in range(args.repeats):
        gen, generated = generator_only(model, keypoints)
        now = {"pose": pose_only(source, frames, model.landmarks, args.workers), "generator": gen,
               "encoder": encoding_only(generated, tmp / f"{name}_enc.mp4", float(src.fps), args.encoder_preset),
               "whole": end_to_end(source, model, tmp / f"{name}_whole.mp4", frames, args, True),
               "stream": end_to_end(source, model, tmp / f"{name}.mp4", frames, args, False)}
        best = {key: max(best[key], now[key]) for key in best}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--encoder-preset", default="medium", help="x264 speed preset of the outputs")
    parser.add_argument("--configs", default=None, help="comma-separated; default tiny,standard "
                        "(+ standard-local on a GPU)")
    parser.add_argument("--frames", type=int, default=None,
                        help="source frames to transfer (default: all for tiny or a GPU, 8 for standard on CPU)")
    parser.add_argument("--source", type=Path, default=SAMPLES / "source_two_people.mp4")
    parser.add_argument("--loop", type=int, default=1, help="transfer the source repeated this many times")
    parser.add_argument("--target", type=Path, default=SAMPLES / "target_cam01.mp4")
    parser.add_argument("--repeats", type=int, default=3,
                        help="run each measurement this many times, report the best (the CPU may be shared)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--workers", type=int, default=None, help="pose detection processes (default: every core)")
    parser.add_argument("--landmarks", choices=("holistic", "body"), default=None,
                        help="the model's landmarks (default: the tiny preset's, holistic)")
    parser.add_argument("--target-poses", type=Path, default=None, metavar="KEYPOINTS.npz",
                        help="the target's keypoints from `dance pose` (no MediaPipe on the target)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = args.configs.split(",") if args.configs else (
        ["tiny", "standard", "standard-local"] if device.type == "cuda" else ["tiny", "standard"])

    t_info = probe(args.target)
    if args.target_poses:
        target_poses = read_source_poses(args.target_poses, args.target, t_info.frame_count,
                                         (t_info.width, t_info.height), 0, t_info.frame_count)
    else:
        target_poses = detect_source_poses(args.target, 0, t_info.frame_count, quiet=True)
    stats = compute_stats(target_poses.sequence)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = looped(args.source, args.loop, tmp)
        src = probe(source)
        print(f"machine: {machine()}; best of {args.repeats} runs")
        print(f"device: {device}; source {args.source.name}" + (f" x{args.loop}" if args.loop > 1 else "")
              + f" ({src.frame_count} frames at {float(src.fps):g} fps), target {args.target.name}; random weights; "
              f"x264 preset {args.encoder_preset}; pose workers {args.workers or 'every core'}")
        for name in names:
            frames = args.frames or (src.frame_count if (name == "tiny" or device.type == "cuda") else 8)
            frames = min(frames, src.frame_count)
            model = DanceModel.load(make_model(tmp / name / "model.pt", name, args.target, stats, args.landmarks), device)
            figures = measure(name, model, source, frames, args, tmp)
            w, h = model.resolution
            rows.append((name, f"{w}x{h}", model.landmarks, frames, figures))
            print(f"  {name}: done", file=sys.stderr)
    print_table(rows)


def print_table(rows) -> None:
    """The figures (frames/s) and the end-to-end / slowest-stage ratios."""
    print()
    print(f"{'config':<8} {'canvas':>8} {'landmarks':>9} {'frames':>6} | {'pose':>6} {'generator':>9} {'encoder':>7} "
          f"| {'whole-clip':>10} {'ratio':>5} | {'streamed':>8} {'ratio':>5}")
    for name, canvas, landmarks, frames, f in rows:
        slowest = min(f["pose"], f["generator"], f["encoder"])
        print(f"{name:<8} {canvas:>8} {landmarks:>9} {frames:>6} | {f['pose']:>6.1f} {f['generator']:>9.1f} "
              f"{f['encoder']:>7.1f} | {f['whole']:>10.1f} {f['whole'] / slowest:>5.2f} | {f['stream']:>8.1f} "
              f"{f['stream'] / slowest:>5.2f}")
    print("\nframes/s. pose = the pose step alone (decode + detect + fill + smooth); generator = the generator "
          "alone on pre-rendered inputs; encoder = x264 alone on pre-generated frames; whole-clip / streamed = "
          "transfer() end to end (--whole-clip / the default); ratio = end to end / the slowest stage alone.")


if __name__ == "__main__":
    main()
