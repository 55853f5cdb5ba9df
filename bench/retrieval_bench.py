"""Night -> day retrieval on held-out Earth crops: raw queries vs pix2pix vs CycleGAN vs ToDayGAN
trained for the same wall time on the CPU, and the retrieval descriptor's speed.

    python bench/retrieval_bench.py                     # 3 minutes of training per method
    python bench/retrieval_bench.py --minutes 2 --methods cyclegan,todaygan --work /tmp/rb

Data (samples/earth_crops.py on ../shared/samples/daynight): 72 px night/day pairs of the western
three quarters of the NASA Earth pair for training (pix2pix sees them as pairs, CycleGAN and
ToDayGAN as two unpaired domains), and for evaluation the eastern quarter, never trained on: 64 px
night crops that show city lights are the queries, the day crops of every 32 px grid place of that
quarter the database; a query is found when the day crop of its own place ranks among the first K.

Training: ``translate-video train --preset tiny`` per method with ``--threads 1``, for the same wall
time each (``--minutes``, start-up included): the run is stopped with Ctrl-C when its time is up
(the loop finishes the step and writes a checkpoint) and resumed with the step it reached as its
total, which writes the model. The learning rate is constant for all (the step count is not known
in advance, so there is no decay). The steps each method reached are printed: on a machine shared
with other work, the load during each run changes them.

Control: ``untrained``, a tiny CycleGAN generator after a single step (near its random initial
weights). Raw night crops are nearly black, and the descriptor maps them all next to the same few
database images; any translation moves them away from there, so the trained methods are compared
with this control as well as with the raw queries.

Evaluation: ``translate-video evaluate-retrieval`` with all models in one run (the database is
described once and cached), Recall@1/5/10 in percent, twice: a query is found when the day crop of
its own place ranks among the first K, and (``heldout/nearby.csv``) when that of its place or of a
neighbouring grid place (one 32 px step, 5.6 degrees, away) does. Descriptor speed: GeM VGG16 conv5
on batches of 16 random images at 64x64 and 224x224, images per second (median of 3 rounds, one
thread unless ``--threads``).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
METHODS = ("pix2pix", "cyclegan", "todaygan")


def cli(*args: object, threads: int) -> subprocess.CompletedProcess:
    """``translate-video ARGS`` in a subprocess with ``threads`` compute threads; raises on failure."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "vid2vid_app.cli.translate", *map(str, args)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


def data_args(method: str, earth: Path) -> list[object]:
    night, day = earth / "train" / "night", earth / "train" / "day"
    if method == "pix2pix":  # all pairs train (no held-out validation), like the unpaired methods
        return ["--paired", night, day, "--val-fraction", 0]
    return ["--domain-a", night, "--domain-b", day]


def train(method: str, earth: Path, runs: Path, budget_s: float, threads: int) -> dict:
    """Train ``method`` for ``budget_s`` seconds of wall time (start-up included), then write its
    model: the run is stopped with Ctrl-C (SIGINT), which makes the loop finish its step and write
    a checkpoint, and resumed with that step as its total, which only exports the model. The
    learning rate stays constant (no decay: the step count is not known in advance)."""
    from vid2vid_app.training import checkpoint_path, load_checkpoint

    common = ["--runs-dir", runs, "--device", "cpu", "--threads", threads, "--quiet"]
    cmd = [sys.executable, "-m", "vid2vid_app.cli.translate", "train", "--mode", method, "--preset", "tiny",
           *data_args(method, earth), "--name", method, "--steps", 10**7, "--decay-steps", 0, *common]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.Popen(list(map(str, cmd)), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=budget_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the loop finishes its step and writes a checkpoint
        proc.communicate(timeout=300)
    else:
        raise SystemExit(f"{method} training ended before its time was up:\n{out[-2000:]}{err[-2000:]}")
    wall = time.perf_counter() - start
    steps = load_checkpoint(checkpoint_path(runs / method))["step"]
    cli("train", "--name", method, "--resume", "--steps", steps, "--decay-steps", 0, *common, threads=threads)
    return {"steps": steps, "wall_s": wall}


def descriptor_speed(threads: int, rounds: int = 3) -> dict[str, float]:
    """Images per second of the GeM VGG16 descriptor at 64x64 and 224x224 (batches of 16)."""
    import torch

    from vid2vid_app.models.descriptor import GeMDescriptor, find_descriptor_weights

    torch.set_num_threads(threads)
    net = GeMDescriptor(find_descriptor_weights())
    speeds = {}
    for side in (64, 224):
        x = torch.rand(16, 3, side, side) * 2 - 1
        with torch.inference_mode():
            net(x)  # warm-up
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t)
        speeds[f"{side}x{side}"] = 16 / statistics.median(times)
    return speeds


def make_crops(work: Path) -> Path:
    """samples/earth_crops.py's folders under ``work/earth`` (made once)."""
    import importlib.util

    earth = work / "earth"
    if not (earth / "heldout" / "day").is_dir():
        spec = importlib.util.spec_from_file_location("earth_crops", ROOT / "samples" / "earth_crops.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["earth_crops"] = module
        spec.loader.exec_module(module)
        module.make_earth_crops(module.DEFAULT_DAYNIGHT, earth, video=False)
    return earth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training wall time per method")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of pix2pix, cyclegan, todaygan")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="working folder [a temp folder]")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    work = args.work or Path(tempfile.mkdtemp(prefix="retrieval_bench_"))
    earth, runs = make_crops(work), work / "runs"
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {args.threads} thread(s); work folder {work}")
    print(f"data: {len(list((earth / 'train' / 'night').iterdir()))} training pairs (72 px), "
          f"{len(list((earth / 'heldout' / 'night').iterdir()))} held-out night queries, "
          f"{len(list((earth / 'heldout' / 'day').iterdir()))} day database crops (64 px)")
    for method in methods:
        info = train(method, earth, runs, args.minutes * 60, args.threads)
        print(f"{method:<9} {info['steps']:5d} steps in {info['wall_s'] / 60:.2f} min "
              f"({info['wall_s'] / info['steps']:.3f} s/step including start-up)", flush=True)
    # Control: a tiny CycleGAN generator after one step, i.e. near its random initial weights. Any
    # translation lifts near-black night crops out of the corner of descriptor space where they all
    # match the same few database images; the trained models must beat this, not just the raw queries.
    cli("train", "--mode", "cyclegan", "--preset", "tiny", *data_args("cyclegan", earth), "--name", "untrained",
        "--steps", 1, "--runs-dir", runs, "--device", "cpu", "--threads", args.threads, "--quiet",
        threads=args.threads)
    models = [a for m in [*methods, "untrained"] for a in ("--model", m)]
    for title, truth in (("exact place (same file name)", []),
                         ("place or a neighbouring grid place (heldout/nearby.csv)",
                          ["--ground-truth", earth / "heldout" / "nearby.csv"])):
        result = cli("evaluate-retrieval", "--queries", earth / "heldout" / "night", "--database",
                     earth / "heldout" / "day", *truth, *models, "--runs-dir", runs, "--cache-dir", work / "cache",
                     "--device", "cpu", "--threads", args.threads, "--quiet", threads=args.threads)
        print(f"\n== found: {title}\n{result.stdout.rstrip()}", flush=True)
    speeds = descriptor_speed(args.threads)
    print("descriptor speed (GeM VGG16 conv5, batch 16): "
          + ", ".join(f"{size} {v:.1f} images/s" for size, v in speeds.items()))


if __name__ == "__main__":
    main()
