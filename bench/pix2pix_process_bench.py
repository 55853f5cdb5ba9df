"""Wall time of a whole pix2pix training process, as a user sees it, against the reference train.py.

    python bench/pix2pix_process_bench.py                          # ours (default and --fp32), 3 rounds
    python bench/pix2pix_process_bench.py --reference ~/pytorch-CycleGAN-and-pix2pix --rounds 5
    python bench/pix2pix_process_bench.py --baseline /tmp/old_checkout   # also time another checkout

Every round runs, one after the other, each variant as a fresh process from start-up to exit on the
same data: 30 aligned 256x256 pairs (A|B side by side, 512x256 PNGs; A is the greyscale of B,
frames of the bundled samples/target_cam01.mp4, so nothing outside the repository is needed),
pix2pix with unet_256, ngf 64, batch 1, 256x256 crops from 286x286, 30 training steps:

  ours             translate-video train --mode pix2pix --aligned DIR --steps 30 (the standard
                   preset; the run also holds out 3 pairs, validates and writes model.pt at the end)
  ours --fp32      the same with --fp32 (no bf16 on a CPU that has it: the previous default)
  baseline         --baseline DIR: `ours` run from another checkout of this project (e.g. the
                   commit before a change), with that checkout's defaults
  reference        --reference DIR: the pytorch-CycleGAN-and-pix2pix checkout's train.py,
                   --model pix2pix --dataset_mode aligned, one epoch over the 30 pairs (= 30
                   steps), CPU (--gpu_ids -1, and no GPU visible), its display off (--display_id 0
                   --no_html: no visdom server is started or waited for)

Variants alternate within each round, so a change of load on a shared machine affects all alike;
the table shows the median of ``--rounds`` and the ratio to the reference (or, without one, to the
figure recorded for the reference on a 2-core AMD EPYC: 42.4 s, not re-run here).

The reference is never needed by the project or its tests. Its train.py needs, besides torch and
torchvision, the packages it imports: ``dominate`` and ``visdom`` (older versions) or ``wandb``
(newer ones), which are best installed into a separate virtual environment; give its Python with
``--reference-python``. Option names differ between its versions (``--n_epochs`` or ``--niter``);
the script reads the checkout's options/*.py and passes the ones it defines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "target_cam01.mp4"
REFERENCE_RECORDED_S = 42.4  # reference train.py on this task, 2-core AMD EPYC (same settings)
PAIRS, SIDE, STEPS = 30, 256, 30


def make_pairs(out: Path) -> Path:
    """``PAIRS`` aligned A|B images in ``out/train`` (the reference's dataroot layout): centre
    squares of the clip's first frames at SIDE x SIDE, A the greyscale of B."""
    import cv2

    sys.path.insert(0, str(REPO))
    from vid2vid_app.video import iter_frames

    train = out / "train"
    train.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(iter_frames(CLIP)):
        if i == PAIRS:
            break
        h, w = frame.shape[:2]
        side = min(h, w)
        square = frame[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        b = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        a = np.repeat(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        cv2.imwrite(str(train / f"{i:04d}.png"), cv2.cvtColor(np.concatenate([a, b], axis=1), cv2.COLOR_RGB2BGR))
    return train


def ours_command(data: Path, runs: Path, extra: list[str]) -> list[str]:
    """translate-video train as a user runs it; the checkout is chosen by the working directory
    (``python -m`` imports the package beside it first)."""
    return [sys.executable, "-m", "vid2vid_app.cli.translate", "train", "--mode", "pix2pix", "--aligned", str(data),
            "--name", "bench", "--runs-dir", str(runs), "--steps", str(STEPS), "--overwrite", *extra]


def reference_command(checkout: Path, python: str, dataroot: Path, work: Path) -> list[str]:
    """train.py with the options this version of the reference defines (see the module doc)."""
    options = "".join(p.read_text() for p in (checkout / "options").glob("*.py"))
    epochs = ["--n_epochs", "1", "--n_epochs_decay", "0"] if "--n_epochs" in options else ["--niter", "1",
                                                                                        "--niter_decay", "0"]
    optional = [flag for flag in (["--display_id", "0"], ["--no_html"], ["--gpu_ids", "-1"]) if flag[0] in options]
    return [python, "train.py", "--dataroot", str(dataroot), "--name", "bench", "--model", "pix2pix",
            "--dataset_mode", "aligned", "--direction", "AtoB", "--netG", "unet_256", "--ngf", "64", "--batch_size", "1",
            "--load_size", "286", "--crop_size", "256", "--checkpoints_dir", str(work / "ref_checkpoints"),
            *epochs, *[v for flag in optional for v in flag]]


def timed_run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds from start to exit, output); exits with the output when the process fails."""
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported [3]")
    parser.add_argument("--reference", type=Path, default=None,
                        help="a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (its train.py is timed)")
    parser.add_argument("--reference-python", default=sys.executable,
                        help="the Python that runs the reference (a venv with its imports) [this one]")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout of this project to time with its own defaults")
    parser.add_argument("--threads", type=int, default=None,
                        help="--threads for our runs [the command's default: the cores free at start]")
    parser.add_argument("--work", type=Path, default=None, help="folder for data and runs [a temp folder]")
    args = parser.parse_args()
    if args.reference is not None and not (args.reference / "train.py").is_file():
        parser.error(f"{args.reference} has no train.py: give a pytorch-CycleGAN-and-pix2pix checkout")
    work = args.work or Path(tempfile.mkdtemp(prefix="pix2pix_process_bench."))
    data = make_pairs(work / "pairs")
    extra = ["--quiet", *(["--threads", str(args.threads)] if args.threads else [])]
    env = {**os.environ, "PYTHONPATH": ""}
    variants = {"ours": (ours_command(data, work / "runs", extra), REPO, env),
                "ours --fp32": (ours_command(data, work / "runs", [*extra, "--fp32"]), REPO, env)}
    if args.baseline is not None:
        variants["baseline"] = (ours_command(data, work / "base_runs", extra), args.baseline, env)
    if args.reference is not None:
        variants["reference"] = (reference_command(args.reference, args.reference_python, work / "pairs", work),
                                 args.reference, {**env, "CUDA_VISIBLE_DEVICES": ""})
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs; load at start "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"task: pix2pix unet_256 ngf 64, batch 1, {SIDE}x{SIDE}, {STEPS} steps on {PAIRS} aligned pairs; "
          f"whole process, start-up included; {args.rounds} alternating round(s)")
    walls: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, (cmd, cwd, run_env) in variants.items():
            wall, _ = timed_run(cmd, cwd, run_env)
            walls[name].append(wall)
            print(f"  round {r + 1}: {name:<12} {wall:6.1f} s", flush=True)
    if "reference" in walls:
        ref, ref_note = statistics.median(walls["reference"]), "reference (median, this run)"
    else:
        ref, ref_note = REFERENCE_RECORDED_S, f"reference {REFERENCE_RECORDED_S} s (recorded earlier, not re-run)"
    print(f"\n{'variant':<14}{'median s':>10}{'min s':>8}{'max s':>8}{'reference / it':>16}   ({ref_note})")
    for name, values in walls.items():
        median = statistics.median(values)
        print(f"{name:<14}{median:>10.1f}{min(values):>8.1f}{max(values):>8.1f}{ref / median:>15.2f}x")
    print(f"load at end {', '.join(f'{x:.1f}' for x in os.getloadavg())} (above {os.cpu_count()}: the CPU was shared)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
