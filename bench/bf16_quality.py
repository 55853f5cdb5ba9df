"""CPU bf16 autocast vs fp32 training: held-out quality at equal steps and seed, and training speed.

    python bench/bf16_quality.py                               # both jobs, seed 0, the presets' steps
    python bench/bf16_quality.py --jobs pix2pix --seeds 0,1,2  # the cheap job over more seeds
    python bench/bf16_quality.py --results bf16.json --only dance:fp32   # one measurement at a time

Two tiny training runs per job and seed, identical but for the precision (``--fp32`` vs
``--cpu-bf16``), through the real commands:

  dance     ``dance train --preset tiny`` on the bundled clips (samples/target_cam01.mp4 +
            target_cam02.mp4, the demo's training set), then ``dance evaluate`` on the held-out end
            of the training frames: PSNR, SSIM (and LPIPS where its offline weights are found).
            Inference runs in fp32 either way, as ``dance transfer`` and ``evaluate`` do on a CPU.
  pix2pix   ``translate-video train --mode pix2pix --preset tiny`` on the aligned night/day crops of
            the Earth that samples/earth_crops.py cuts from ../shared/samples/daynight (427 pairs,
            the last 10% held out): the validation PSNR and L1 the training logs at its last step.

The quality criterion for turning bf16 on by default is a held-out PSNR within 0.3 dB of fp32 on
both jobs. GAN training is noisy: with several ``--seeds`` the table also shows how far fp32 runs
of different seeds lie apart, which is the scale a precision difference has to be judged against.
``s/step`` is each run's training time per step as its log reports it (it includes checkpoints
and validation; noisy where other jobs share the machine).

Every measurement is one training run in its own process; ``--results FILE`` keeps them (a rerun
skips those already there), so a long comparison can be run in parts (``--only JOB:PRECISION``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VID2VID_SHARED", REPO.parent / "shared"))
DANCE_VIDEOS = [REPO / "samples" / "target_cam01.mp4", REPO / "samples" / "target_cam02.mp4"]
PRECISION_FLAGS = {"fp32": "--fp32", "bf16": "--cpu-bf16"}
JOBS = ("dance", "pix2pix")
TOLERANCE_DB = 0.3


def command(module: str, *args: str) -> str:
    """Run ``python -m vid2vid_app.cli.<module> ARGS`` from this checkout; its stdout + stderr.
    Exits with the command's output when it fails."""
    cmd = [sys.executable, "-m", f"vid2vid_app.cli.{module}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def seconds_per_image(log_txt: Path) -> float:
    """Seconds per training image of a run: 1 / the median of the ``img/s`` its log reports at
    every log step (times the batch size: seconds per step)."""
    rates = [float(m.group(1)) for m in re.finditer(r" ([\d.]+) img/s", log_txt.read_text())]
    return 1.0 / statistics.median(rates) if rates else float("nan")


def earth_pairs(work: Path) -> Path:
    """The aligned night/day training crops (samples/earth_crops.py), cut once into ``work``."""
    out = work / "earth"
    if not (out / "train" / "night").is_dir():
        daynight = SHARED / "samples" / "daynight"
        if not daynight.is_dir():
            sys.exit(f"{daynight} is missing: the pix2pix measurement needs the shared sample media.")
        subprocess.run([sys.executable, str(REPO / "samples" / "earth_crops.py"), str(daynight), str(out)],
                       check=True, capture_output=True)
    return out / "train"


def measure_dance(precision: str, seed: int, steps: int | None, runs: Path) -> dict:
    """Train the tiny dance preset in ``precision``, then evaluate it on its held-out frames."""
    name = f"dance_{precision}_s{seed}"
    steps_args = ["--steps", str(steps)] if steps else []
    started = time.perf_counter()
    command("dance", "train", *map(str, DANCE_VIDEOS), "--name", name, "--preset", "tiny", "--seed", str(seed),
            *steps_args, PRECISION_FLAGS[precision], "--runs-dir", str(runs), "--overwrite", "--quiet")
    wall = time.perf_counter() - started
    metrics_path = runs / f"{name}.json"
    command("dance", "evaluate", "--model", str(runs / name), "--json", str(metrics_path), "--no-pose",
            "--no-baselines", "--overwrite", "--quiet")
    metrics = json.loads(metrics_path.read_text())
    batch = json.loads((runs / name / "dance_config.json").read_text())["train"]["batch_size"]
    return {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "lpips": metrics.get("lpips"),
            "s_step": seconds_per_image(runs / name / "global" / "log.txt") * batch, "wall": wall}


def measure_pix2pix(precision: str, seed: int, steps: int | None, runs: Path, pairs: Path) -> dict:
    """Train the tiny pix2pix preset in ``precision``; the held-out validation of its last step."""
    name = f"pix2pix_{precision}_s{seed}"
    steps_args = ["--steps", str(steps)] if steps else []
    started = time.perf_counter()
    command("translate", "train", "--mode", "pix2pix", "--preset", "tiny", "--paired", str(pairs / "night"),
            str(pairs / "day"), "--name", name, "--seed", str(seed), *steps_args, PRECISION_FLAGS[precision],
            "--runs-dir", str(runs), "--overwrite", "--quiet")
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (runs / name / "stats.jsonl").read_text().splitlines() if line]
    val = [r["val"] for r in records if "val" in r][-1]
    batch = json.loads((runs / name / "translate.json").read_text())["train"]["batch_size"]
    return {"psnr": val["val_psnr"], "l1": val["val_l1"], "identity_psnr": val["val_identity_psnr"],
            "s_step": seconds_per_image(runs / name / "log.txt") * batch, "wall": wall}


def fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def report(results: dict[str, dict], jobs: list[str], seeds: list[int]) -> None:
    """One line per job and seed (fp32 | bf16 | difference), then the verdict per job."""
    print(f"\n{'job':<8}{'seed':>5}{'fp32 PSNR':>11}{'bf16 PSNR':>11}{'bf16-fp32':>11}"
          f"{'fp32 s/step':>13}{'bf16 s/step':>13}{'speed-up':>10}   other metrics, fp32 / bf16")
    verdicts = []
    for job in jobs:
        diffs, fp32_psnrs = [], []
        for seed in seeds:
            a, b = results.get(f"{job}:fp32:{seed}"), results.get(f"{job}:bf16:{seed}")
            if a is None or b is None:
                continue
            diff = b["psnr"] - a["psnr"]
            diffs.append(diff)
            fp32_psnrs.append(a["psnr"])
            other = "  ".join(f"{name} {fmt(a.get(key), 3)} / {fmt(b.get(key), 3)}"
                              for name, key in (("SSIM", "ssim"), ("LPIPS", "lpips"), ("L1", "l1")) if key in a)
            print(f"{job:<8}{seed:>5}{fmt(a['psnr']):>11}{fmt(b['psnr']):>11}{diff:>+11.2f}"
                  f"{fmt(a['s_step'], 3):>13}{fmt(b['s_step'], 3):>13}{a['s_step'] / b['s_step']:>9.2f}x   {other}")
        if not diffs:
            continue
        mean = statistics.mean(diffs)
        spread = (f"; fp32 seeds span {max(fp32_psnrs) - min(fp32_psnrs):.2f} dB" if len(fp32_psnrs) > 1 else "")
        ok = mean >= -TOLERANCE_DB  # bf16 may be better; it must not be worse by more than the tolerance
        verdicts.append(ok)
        print(f"{job:<8} mean bf16 - fp32 {mean:+.2f} dB over {len(diffs)} seed(s){spread}: "
              f"{'within' if ok else 'OUTSIDE'} the tolerance (at most {TOLERANCE_DB} dB below fp32)")
    if len(verdicts) == len(jobs):
        print(f"\nbf16 {'meets' if all(verdicts) else 'does NOT meet'} the criterion on {', '.join(jobs)}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma list of: " + ", ".join(JOBS))
    parser.add_argument("--seeds", default="0", help="comma list of seeds [0]")
    parser.add_argument("--dance-steps", type=int, default=None, help="dance steps [the tiny preset's, 1200]")
    parser.add_argument("--pix2pix-steps", type=int, default=None, help="pix2pix steps [the tiny preset's, 300]")
    parser.add_argument("--only", default=None, help="run only these measurements, e.g. dance:fp32,pix2pix:bf16")
    parser.add_argument("--results", type=Path, default=None,
                        help="JSON file that keeps the measurements; those already in it are not run again")
    parser.add_argument("--work", type=Path, default=None, help="folder for runs and data [a temp folder]")
    parser.add_argument("--keep", action="store_true", help="keep the runs")
    args = parser.parse_args()
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = sorted(set(jobs) - set(JOBS))
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}; use {', '.join(JOBS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    only = {o.strip() for o in args.only.split(",")} if args.only else None
    results = json.loads(args.results.read_text()) if args.results and args.results.is_file() else {}
    work = args.work or Path(tempfile.mkdtemp(prefix="bf16_quality."))
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for job in jobs:
        for seed in seeds:
            for precision in PRECISION_FLAGS:
                key = f"{job}:{precision}:{seed}"
                if key in results or (only is not None and f"{job}:{precision}" not in only):
                    continue
                if job == "dance":
                    result = measure_dance(precision, seed, args.dance_steps, runs)
                else:
                    result = measure_pix2pix(precision, seed, args.pix2pix_steps, runs, earth_pairs(work))
                results[key] = {**result, "load_after": os.getloadavg()[0]}
                print(f"  {key}: PSNR {result['psnr']:.2f} dB, {result['wall']:.0f} s", flush=True)
                if args.results:
                    args.results.write_text(json.dumps(results, indent=1))
    report(results, jobs, seeds)
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
