"""Benchmark: end-to-end `dance transfer` frames/s against generator-only frames/s.

For each config a model file with random weights is written (throughput does not depend on
the weights' values) for the bundled target clip, then:

- generator only: the stick figures are rendered beforehand and kept in memory; only the
  generator runs, frame by frame with the previous output fed back;
- generation pass: steps 3-5 of the pipeline (render, generate, encode the output; rendering
  and encoding in background threads);
- end to end: :func:`vid2vid_app.dance.transfer.transfer` on the source clip, including the
  pose pass (decode + MediaPipe on every frame + normalisation) that must finish before
  generation can start.

Configs: ``tiny`` = the tiny preset's final generator (local enhancer, ngf 8 / 16, 128x256
canvas for the portrait sample); ``standard`` = the standard preset's global generator (ngf 64,
4 downsamplings, 9 residual blocks) at 512x256 (256x512 portrait); ``standard-local`` = its
local enhancer at 1024x512 (GPU only by default: seconds per frame on a CPU).

    python bench/transfer_bench.py [--device cpu|cuda] [--configs tiny,standard] [--frames N]
                                   [--repeats 3] [--threads N] [--poses KEYPOINTS.npz]
                                   [--target-poses KEYPOINTS.npz] [--target-fps 30]

``--poses`` (the source's keypoints, as `dance pose SOURCE -o DIR` writes them to
DIR/keypoints.npz) makes every pass read them instead of running MediaPipe, as `dance transfer
--poses` does: end to end then covers reading the keypoints, normalising, rendering, generating
and encoding (no detection pass). ``--target-poses``
does the same for the target clip, whose body statistics the model file needs. With both, the
benchmark never imports MediaPipe (e.g. on a GPU machine without it). Precomputed files for the
bundled samples: bench/data/source_pose/keypoints.npz and bench/data/target_pose/keypoints.npz.

On CUDA every timing waits for the GPU (torch.cuda.synchronize, or the copy of each generated
frame back to the CPU in the pipeline), and the generator runs as `dance transfer` runs it
(DanceModel.generate: inference_mode, bf16/fp16 autocast, channels_last, cuDNN autotuning).

On a CPU shared with other work use ``--threads 1``: with more torch threads than free cores,
PyTorch's OpenMP threads wait on each other and a forward pass can get several times slower at
random, which swamps the comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

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
    run_generation,
    to_target_poses,
    transfer,
)
from vid2vid_app.device import resolve_device
from vid2vid_app.imaging import letterbox_geometry, to_tensor
from vid2vid_app.models import build_generator
from vid2vid_app.pose import RenderStyle, compute_stats
from vid2vid_app.pose.keypoints import PoseSequence
from vid2vid_app.video import VideoWriter, probe

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


def make_model(path: Path, name: str, target: Path, target_stats) -> Path:
    kwargs, canvas = CONFIGS[name]
    torch.manual_seed(0)
    g = build_generator(in_channels=6, out_channels=3, init="normal", **kwargs)
    info = probe(target)
    size = (info.width, info.height)
    return save_dance_model(path, generator=g, face_generator=None, config=make_config("tiny"),
                            target_stats=target_stats, render_style=RenderStyle(), target_size=size,
                            resolution=canvas, letterbox=letterbox_geometry(*size, *canvas), stage="global")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def generator_only(model: DanceModel, keypoints: np.ndarray, warmup: int = 3) -> float:
    """Frames/s of the generator alone (inputs prepared in memory beforehand), with cuDNN
    autotuning on a GPU as the pipeline (run_generation) has it."""
    poses = [to_tensor(model.render(kp)).to(model.device) for kp in keypoints]
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark or model.device.type == "cuda"
    try:
        prev = None
        for pose in poses[:warmup]:
            prev = model.generate(pose, prev)
        sync(model.device)
        prev = None
        t = time.perf_counter()
        for pose in poses:
            prev = model.generate(pose, prev)
        sync(model.device)
        return len(poses) / (time.perf_counter() - t)
    finally:
        torch.backends.cudnn.benchmark = benchmark


def generation_pass(model: DanceModel, keypoints: np.ndarray, out: Path, fps: float,
                    encoder_preset: str = "medium") -> float:
    """Frames/s of render + generate + encode (the pipeline's second pass)."""
    box = model.letterbox
    with VideoWriter(out, fps, overwrite=True, preset=encoder_preset) as writer:
        seconds = run_generation(model, keypoints, lambda gen, pose: writer.write(content_crop(gen, box)),
                                 quiet=True)
    return len(keypoints) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--encoder-preset", default="medium", help="x264 speed preset of the outputs")
    parser.add_argument("--configs", default=None, help="comma-separated; default tiny,standard "
                        "(+ standard-local on a GPU)")
    parser.add_argument("--frames", type=int, default=None,
                        help="source frames to transfer (default: all 100 for tiny or a GPU, 8 for standard on CPU)")
    parser.add_argument("--source", type=Path, default=SAMPLES / "source_two_people.mp4")
    parser.add_argument("--target", type=Path, default=SAMPLES / "target_cam01.mp4")
    parser.add_argument("--repeats", type=int, default=3,
                        help="run each measurement this many times, report the best (the CPU may be shared)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--poses", type=Path, default=None, metavar="KEYPOINTS.npz",
                        help="the source's keypoints from `dance pose` (no MediaPipe on the source)")
    parser.add_argument("--target-poses", type=Path, default=None, metavar="KEYPOINTS.npz",
                        help="the target's keypoints from `dance pose` (no MediaPipe on the target)")
    parser.add_argument("--target-fps", type=float, default=None,
                        help="print whether each config reaches this many frames/s end to end")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = args.configs.split(",") if args.configs else (
        ["tiny", "standard", "standard-local"] if device.type == "cuda" else ["tiny", "standard"])

    print(f"machine: {machine()}; best of {args.repeats} runs")
    print(f"device: {device}; source {args.source.name} ({probe(args.source).frame_count} frames), "
          f"target {args.target.name}; random weights (throughput does not depend on their values); "
          f"x264 preset {args.encoder_preset}")
    print(f"poses: source {'from ' + str(args.poses) if args.poses else 'detected with MediaPipe'}, "
          f"target {'from ' + str(args.target_poses) if args.target_poses else 'detected with MediaPipe'}")
    t_info = probe(args.target)
    if args.target_poses:
        target_poses = read_source_poses(args.target_poses, args.target, t_info.frame_count,
                                         (t_info.width, t_info.height), 0, t_info.frame_count)
    else:
        target_poses = detect_source_poses(args.target, 0, t_info.frame_count, quiet=True)
    stats = compute_stats(PoseSequence(target_poses.sequence.keypoints, (t_info.width, t_info.height), 60.0))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            src = probe(args.source)
            frames = args.frames or (src.frame_count if (name == "tiny" or device.type == "cuda") else 8)
            frames = min(frames, src.frame_count)
            model_path = make_model(tmp / name / "model.pt", name, args.target, stats)
            model = DanceModel.load(model_path, device)
            if args.poses:
                poses = read_source_poses(args.poses, args.source, src.frame_count, (src.width, src.height),
                                          0, frames)
            else:
                poses = detect_source_poses(args.source, 0, frames, quiet=True)
            keypoints = to_target_poses(poses, model.target_size, model.target_stats, True)
            gen_fps = pass_fps = e2e_fps = 0.0
            pose_seconds = float("inf")
            # Interleaved repeats, best of each: other work on a shared CPU only ever slows a run.
            for _ in range(args.repeats):
                gen_fps = max(gen_fps, generator_only(model, keypoints))
                pass_fps = max(pass_fps, generation_pass(model, keypoints, tmp / f"{name}_pass.mp4", float(src.fps),
                                                           args.encoder_preset))
                report = transfer(args.source, model, tmp / f"{name}.mp4",
                                  TransferOptions(end=frames, poses=args.poses, quiet=True, overwrite=True,
                                                  encoder_preset=args.encoder_preset))
                if report.frames / report.total_seconds > e2e_fps:
                    e2e_fps, pose_seconds = report.frames / report.total_seconds, report.pose_seconds
            w, h = model.resolution
            rows.append((name, f"{w}x{h}", frames, gen_fps, pass_fps, e2e_fps, pose_seconds))
            print(f"  {name}: done", file=sys.stderr)

    print()
    print(f"{'config':<15} {'canvas':>9} {'frames':>6} {'generator':>10} {'gen. pass':>10} {'end to end':>11} "
          f"{'pass/gen':>8} {'e2e/gen':>8} {'pose pass':>9}")
    for name, canvas, frames, gen, pas, e2e, pose_s in rows:
        print(f"{name:<15} {canvas:>9} {frames:>6} {gen:>8.1f}/s {pas:>8.1f}/s {e2e:>9.1f}/s "
              f"{pas / gen:>8.0%} {e2e / gen:>8.0%} {pose_s:>8.1f}s")
    print("\ngenerator = generator alone on pre-rendered inputs; gen. pass = render + generate + encode "
          "(threads); end to end = transfer() including the pose pass (decode + detect + normalise"
          + (", poses read from the keypoints file instead of detected" if args.poses else "") + ").")
    if args.target_fps:
        for name, canvas, _frames, _gen, _pas, e2e, _pose_s in rows:
            verdict = "met" if e2e >= args.target_fps else "NOT met"
            print(f"target >= {args.target_fps:g} frames/s end to end: {name} {canvas} {e2e:.1f}/s: {verdict}")


if __name__ == "__main__":
    main()
