"""Tiny `dance train` steps alone and beside a competing busy process, with the old and new thread defaults.

    python bench/load_bench.py                      # 2 warm-up + 8 measured steps per run (at most 60 s)
    python bench/load_bench.py --steps 4 --warmup 1 --cases old,new

Cases, each run in a fresh process (the OpenMP runtime reads its environment once, when PyTorch loads):

  old       PyTorch's default threads (one per core) and OpenMP's default wait: idle threads spin a
            while before they sleep
  passive   PyTorch's default threads, passive OpenMP wait: idle threads sleep at once (a
            reference: graceful under load, but slower alone)
  new       what the commands do: a short spin before sleeping (GOMP_SPINCOUNT=10000, set by
            importing vid2vid_app.cli before torch) and the thread count of
            vid2vid_app.device.configure_threads() (free cores at start)

Each case runs alone, then while a competing process runs: 2 PyTorch threads multiplying 512x512
matrices, with OpenMP's defaults (another user's job). The load starts first and is busy before the
training process starts, as when a command is started on a machine that is already in use.

A step is the global-stage step of the tiny preset as `dance train --preset tiny` runs it: a batch
of 4 frame pairs from the dataset (stick figures drawn, frames letterboxed) and
TemporalObjective.train_step, fp32 on the CPU, on data prepared once from samples/target_cam01.mp4
(pose detection runs once, before any timing). The table gives the median seconds per step, the
slowdown under load (goal: at most 2.5x) and the competing process's matmul rate, which shows
whether the training process left it its share.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO / "samples" / "target_cam01.mp4"
CASES = ("old", "passive", "new")
# Thread and wait-policy settings the children must not inherit from the shell: every case sets its own.
CLEARED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")

LOAD = """
import signal, sys, time
import torch
torch.set_num_threads(2)
a, b = torch.randn(512, 512), torch.randn(512, 512)
count, t0 = 0, time.perf_counter()
def stop(*_):
    print(f"matmuls_per_s {count / (time.perf_counter() - t0):.1f}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
t0 = time.perf_counter()
while True:
    a @ b
    count += 1
"""


def clean_env(case: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    if case == "passive":
        env["OMP_WAIT_POLICY"], env["KMP_BLOCKTIME"] = "PASSIVE", "0"
    return env


# ------------------------------------------------------------------------------------------------
# Child processes


def child_prepare(data_dir: str) -> dict:
    """Decode, detect and letterbox the clip once into ``data_dir`` (later children reuse it)."""
    _prepared(data_dir)
    return {}


def _prepared(data_dir: str):
    from vid2vid_app.dance.config import final_canvas, make_config
    from vid2vid_app.dance.prepare import prepare_dance_data
    from vid2vid_app.video import probe

    cfg = make_config("tiny")
    info = probe(VIDEO)
    canvas = final_canvas(cfg, (info.width, info.height))
    data = prepare_dance_data([VIDEO], data_dir, canvas, detect_max_side=cfg.detect_max_side,
                              smooth_method=cfg.smooth_method, max_gap=cfg.max_gap,
                              min_frames=cfg.min_train_frames, quiet=True)
    return cfg, data


def child_train(case: str, data_dir: str, warmup: int, steps: int, budget_s: float) -> dict:
    """Time ``steps`` tiny global-stage training steps after ``warmup`` ones, or fewer (at least one)
    once the measured ones took ``budget_s``; seconds per step."""
    if case == "new":
        import vid2vid_app.cli  # noqa: F401  (the commands' OpenMP settings, before torch loads)
    import torch
    from torch.utils.data import DataLoader

    from vid2vid_app.dance.dataset import TemporalPairDataset
    from vid2vid_app.dance.train import build_discriminators, build_global, loss_kwargs, train_config
    from vid2vid_app.device import configure_threads, reuse_freed_memory
    from vid2vid_app.pose.render import RenderStyle
    from vid2vid_app.training import Amp
    from vid2vid_app.training.objectives import TemporalObjective

    if case == "new":
        configure_threads(None)
    cfg, data = _prepared(data_dir)
    pairs, _ = data.split(cfg.val_fraction)
    reuse_freed_memory()  # as the training loop does on CPU
    torch.manual_seed(0)
    D, Dt = build_discriminators(cfg)
    objective = TemporalObjective(build_global(cfg), D, Dt, **loss_kwargs(cfg, None))
    objective.train()
    settings = train_config(cfg, "global")  # learning rate, betas and batch size of the tiny preset
    optimizers = objective.make_optimizers(settings.lr, (settings.beta1, settings.beta2))
    amp = Amp("cpu", enabled=False)
    dataset = TemporalPairDataset(data, pairs, RenderStyle(thickness_scale=cfg.render_thickness),
                                  pose_jitter=cfg.pose_jitter)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    times: list[float] = []

    def done() -> bool:
        measured = times[warmup:]
        return len(measured) >= steps or (len(measured) >= 1 and sum(measured) >= budget_s)

    while not done():
        t = time.perf_counter()
        for batch in loader:
            objective.train_step(batch, optimizers, amp)
            now = time.perf_counter()
            times.append(now - t)
            t = now
            if done():
                break
    return {"seconds": times[warmup:], "threads": torch.get_num_threads(),
            "wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "batch": settings.batch_size}


def run_child(*args, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True,
                         env=env, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# Parent


def start_load() -> subprocess.Popen:
    """The competing process, busy on 2 threads once this returns."""
    load = subprocess.Popen([sys.executable, "-c", LOAD], stdout=subprocess.PIPE, text=True, env=clean_env("old"))
    if load.stdout.readline().strip() != "ready":
        raise SystemExit("the competing load process did not start")
    time.sleep(1.0)  # running at full speed, and counted by the next process's look at the CPUs
    return load


def stop_load(load: subprocess.Popen) -> float:
    load.send_signal(signal.SIGTERM)
    out, _ = load.communicate(timeout=30)
    for line in out.splitlines():
        if line.startswith("matmuls_per_s"):
            return float(line.split()[1])
    return float("nan")


def measure(case: str, data_dir: str, warmup: int, steps: int, budget_s: float, loaded: bool) -> dict:
    from vid2vid_app.device import busy_cores

    others = busy_cores(0.5)  # cores other users keep busy (the machine may be shared)
    load = start_load() if loaded else None
    try:
        result = run_child("train", case, data_dir, warmup, steps, budget_s, env=clean_env(case))
    finally:
        rate = stop_load(load) if load is not None else None
    result["load_rate"], result["others"] = rate, others
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--steps", type=int, default=8, help="measured steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first (at least 1)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of measured steps after which a run stops early (a collapsed run "
                             "takes tens of seconds per step)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = json.loads(args.child)
        print(json.dumps(child_prepare(*rest) if kind == "prepare" else child_train(*rest)))
        return
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cpu_name()}, {cores} usable cores (of {os.cpu_count()}), load average at start "
          f"{os.getloadavg()[0]:.1f}")
    print(f"settings: tiny dance preset, global stage, batch 4, fp32; warm-up {args.warmup}, measured {args.steps} "
          f"steps per run (at most {args.budget:.0f} s of them); competing load: 2 PyTorch threads of 512x512 "
          "matmuls, OpenMP defaults")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="load_bench_") as tmp:
        data_dir = str(Path(tmp) / "data")
        run_child("prepare", data_dir, env=clean_env("old"))
        rows = []
        for case in cases:
            alone = measure(case, data_dir, max(1, args.warmup), args.steps, args.budget, loaded=False)
            loaded = measure(case, data_dir, max(1, args.warmup), args.steps, args.budget, loaded=True)
            rows.append((case, alone, loaded))
    print(f"\n{'case':<9} {'steps':>5} {'threads alone/load':>18} {'wait':>8} {'s/step alone':>13} {'s/step loaded':>14} "
          f"{'slowdown':>9} {'load matmuls/s':>15} {'others busy':>12}")
    for case, alone, loaded in rows:
        a, b = statistics.median(alone["seconds"]), statistics.median(loaded["seconds"])
        n = f"{len(alone['seconds'])}/{len(loaded['seconds'])}"
        print(f"{case:<9} {n:>5} {alone['threads']:>9}/{loaded['threads']:<8} {alone['wait_policy']:>8} {a:>13.3f} "
              f"{b:>14.3f} {b / a:>8.1f}x {loaded['load_rate']:>15.1f} {alone['others']:>5.1f}/{loaded['others']:<5.1f}")
    print(f"\ngoal: slowdown at most 2.5x under load. total {time.perf_counter() - t0:.0f} s; load average at end "
          f"{os.getloadavg()[0]:.1f}\n(others busy: cores that other processes used just before the alone / loaded "
          "run; above 0, the machine was shared)")


if __name__ == "__main__":
    main()
