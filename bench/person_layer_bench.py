"""Person layer vs full-frame generation: held-out quality and training speed on real clips.

    python bench/person_layer_bench.py                       # both clip sets, 400 steps each
    python bench/person_layer_bench.py --sets cam03 --steps 300 --seed 1
    python bench/person_layer_bench.py --runs-dir /tmp/plb --keep   # keep the runs for a look

For every clip set, `dance train --preset tiny` runs twice with the same steps and seed, once with
``--person-layer`` and once with ``--full-frame``. Each model then reconstructs the held-out end
of its training frames the way users get it: ``dance transfer LAST_VIDEO --no-normalize --start S``
on the held-out part of the last target video (the source's poses are detected and smoothed by
transfer itself). The written video is cropped to its content (the encoder pads an odd side) and
compared with the real frames at that size:

  PSNR, SSIM         higher is better
  LPIPS              AlexNet LPIPS (lower is better; "n/a" without the offline weights)
  pose               keypoints re-detected on the output vs the prepared ones, x body height
                     (lower is better; "n/a" when no person is found on the output)
  bg flicker         frame-to-frame change outside the person (the real frames' masks), output /
                     real (1 = as steady as the real background)
  s/step             training seconds per step of the stage, as `dance train` reported it (noisy
                     where other jobs share the machine)
  step (interleaved) one training iteration (data loading included) of each mode timed in turns,
                     ``--timing-rounds`` rounds of 20 steps on the same prepared data, median: the
                     fairer comparison of the two modes' cost on a shared machine

plus the mean-training-frame PSNR of the same frames (the baseline a model must beat), and where
the error is: PSNR over the person (the real frames' masks, grown as for the plates) and over the
rest, the PSNR the output would have if its background were the plate itself ("plate bg": no
matte error, no encoding loss there), and the person PSNR of the mean training frame and of the training frame with
the nearest pose (a lookup of the real person in a similar pose).

Clip sets (bundled in samples/, real recordings):
  demo    target_cam01.mp4 + target_cam02.mp4, the demo's training set (held out: cam02's end)
  cam03   target_cam03.mp4, a third camera of the same scene, trained alone
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SETS = {"demo": ["target_cam01.mp4", "target_cam02.mp4"], "cam03": ["target_cam03.mp4"]}
MODES = {"person layer": "--person-layer", "full frame": "--full-frame"}


def dance(*args: str) -> str:
    """Run the `dance` command (this checkout's) and return its output; exit on failure."""
    cmd = [sys.executable, "-m", "vid2vid_app.cli.dance", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def train(videos: list[Path], name: str, mode_flag: str, steps: int, seed: int, runs: Path) -> float:
    """Train one run; returns its global stage's seconds per step."""
    out = dance("train", *map(str, videos), "--name", name, "--preset", "tiny", "--steps", str(steps),
                "--seed", str(seed), mode_flag, "--runs-dir", str(runs), "--overwrite")
    for line in out.splitlines():
        if line.startswith("note:"):
            print(f"  {name}: {line}")
    match = re.search(r"global: (\d+) steps?, ([\d.]+) s", out)
    return float(match.group(2)) / int(match.group(1)) if match else float("nan")


def held_out(model) -> tuple[Path, int, np.ndarray]:
    """The last target video, the frame of it where the held-out part starts, and the held-out
    frames (with a person) as indices into the prepared frames, from that start on."""
    videos = [Path(v) for v in model.config["videos"]]
    data = model.data
    val = np.asarray(data["val_frames"], dtype=np.int64)
    with np.load(Path(model.path).parent / data["dir"] / "poses.npz") as z:
        segment = z["segment"]
    last = int(segment[-1])
    first_of_last = int(np.flatnonzero(segment == last)[0])
    return videos[last], int(data["val_start"]) - first_of_last, val


def measure(model_path: Path, work: Path, lpips, masks_from: Path, plates: np.ndarray | None) -> dict[str, float]:
    """Transfer the held-out part with --no-normalize and compare it with the real frames.
    ``masks_from`` and ``plates`` (V, H, W, 3) come from the set's person-layer run (same canvas)."""
    from vid2vid_app.dance.baselines import mean_training_frame, nearest_pose_index, training_frames
    from vid2vid_app.dance.evaluate import background_region, canvas_pose_distance
    from vid2vid_app.dance.model import DanceModel
    from vid2vid_app.dance.transfer import content_crop
    from vid2vid_app.metrics import background_flicker, psnr, ssim
    from vid2vid_app.video import iter_frames

    model = DanceModel.load(model_path)
    video, start, val = held_out(model)
    out = work / f"{model_path.parent.name}.mp4"
    dance("transfer", str(video), "--model", str(model_path), "-o", str(out), "--no-normalize",
          "--start", str(start), "--quiet", "--overwrite")
    box = model.letterbox
    written = np.stack([f[: box.content_h, : box.content_w] for f in iter_frames(out)])
    fake = written[val - int(model.data["val_start"])]  # the held-out frames that show a person
    train = training_frames(model)
    real = np.stack([content_crop(train.frames[int(t)], box) for t in val])
    # One set of person masks for both modes: the person-layer run's cache (same video, same canvas).
    w, h = model.resolution
    masks = np.memmap(masks_from, dtype=np.uint8, mode="r").reshape(-1, h, w)
    background = background_region(np.stack([content_crop(masks[int(t)], box) for t in val]))
    with np.load(Path(model_path).parent / "data" / "poses.npz") as z:
        keypoints = z["keypoints"][val]
    mean = content_crop(mean_training_frame(train.videos()[-1]), box)
    person = ~background
    # Where the error is: the real held-out frames' background replaced by the plate (every model
    # pixel there exact), and the mean training frame's and nearest-training-pose frame's person.
    plate = content_plate(plates, real, box)
    nearest = np.stack([content_crop(train.frames[int(i)], box)
                        for i in nearest_pose_index(train.videos()[-1], keypoints)])
    return {
        "perfect_bg": psnr(np.where(background[..., None], plate[None], fake), real) if plate is not None else float("nan"),
        "mean_person": region_psnr(np.repeat(mean[None], len(real), axis=0), real, person),
        "nearest_person": region_psnr(nearest, real, person),
        "psnr": psnr(fake, real), "ssim": ssim(fake, real),
        "psnr_person": region_psnr(fake, real, person), "psnr_bg": region_psnr(fake, real, background),
        "lpips": lpips(fake, real) if lpips is not None and min(fake.shape[1:3]) >= 32 else float("nan"),
        "pose": canvas_pose_distance(model, fake, keypoints, float(model.data.get("fps", 30.0))),
        "bg_flicker": background_flicker(fake, real, background),
        "mean_psnr": psnr(np.repeat(mean[None], len(real), axis=0), real),
        "frames": len(real),
    }


def content_plate(plates: np.ndarray | None, real: np.ndarray, box) -> np.ndarray | None:
    """Of the person-layer run's canvas plates (V, H, W, 3) uint8, the one of the video that the
    content-cropped ``real`` frames (N, h, w, 3) show, cropped to the content; None without plates."""
    from vid2vid_app.dance.backdrop import closest_image
    from vid2vid_app.dance.transfer import content_crop

    if plates is None:
        return None
    cropped = np.stack([content_crop(p, box) for p in plates])
    return cropped[closest_image(cropped, real)]


def region_psnr(fake: np.ndarray, real: np.ndarray, region: np.ndarray) -> float:
    """PSNR (dB, range 255) of uint8 (T, H, W, 3) frames over the pixels where ``region`` (T, H, W)
    is True, all frames pooled."""
    diff = (fake.astype(np.float64) - real.astype(np.float64))[region]
    return float(10 * np.log10(255.0**2 / max(float(np.mean(diff**2)), 1e-12)))


def interleaved_step_times(run_dir: Path, rounds: int, steps: int = 20) -> dict[str, float]:
    """Median seconds per training iteration of the tiny preset's global stage, person layer and
    full frame, timed in alternating rounds of ``steps`` on the prepared data of ``run_dir`` (a
    person-layer run). Each iteration loads its batch through the dataset as the loop does."""
    import torch

    from vid2vid_app.config import from_dict
    from vid2vid_app.dance.config import DanceConfig, final_canvas
    from vid2vid_app.dance.dataset import TemporalPairDataset
    from vid2vid_app.dance.layer import prepare_layer
    from vid2vid_app.dance.prepare import prepare_dance_data
    from vid2vid_app.dance.train import build_discriminators, build_global, layer_kwargs, loss_kwargs
    from vid2vid_app.models.person_layer import LAYER_CHANNELS
    from vid2vid_app.pose.render import RenderStyle
    from vid2vid_app.training.objectives import TemporalObjective
    from vid2vid_app.video import probe

    cfg = from_dict(DanceConfig, json.loads((run_dir / "dance_config.json").read_text()))
    info = probe(cfg.videos[0])
    # The run's own settings, so its cached poses and frames are reused (nothing is detected again).
    data = prepare_dance_data(list(cfg.videos), run_dir / "data", final_canvas(cfg, (info.width, info.height)),
                              detect_max_side=cfg.detect_max_side, smooth_method=cfg.smooth_method,
                              max_gap=cfg.max_gap, landmarks=cfg.landmarks, quiet=True)
    if not (data.reused_poses and data.reused_frames):
        sys.exit(f"{run_dir}: its prepared data was not reused; the timing would include preparation")
    layer = prepare_layer(data, quiet=True)
    pairs, _ = data.split(cfg.val_fraction)
    style = RenderStyle(thickness_scale=cfg.render_thickness)
    setups = {}
    for mode, lay in (("person layer", layer), ("full frame", None)):
        torch.manual_seed(0)
        G = build_global(cfg, LAYER_CHANNELS if lay is not None else 3)
        D, Dt = build_discriminators(cfg)
        objective = TemporalObjective(G, D, Dt, **loss_kwargs(cfg, None), **layer_kwargs(cfg, lay))
        dataset = TemporalPairDataset(data, pairs, style, pose_jitter=cfg.pose_jitter, layer=lay)
        setups[mode] = (objective, objective.make_optimizers(cfg.train.lr, (0.5, 0.999)), dataset)
    times: dict[str, list[float]] = {mode: [] for mode in setups}
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for mode, (objective, optimizers, dataset) in setups.items():
            objective.train()
            started = time.perf_counter()
            for _ in range(steps):
                items = [dataset[int(i)] for i in rng.integers(0, len(dataset), cfg.train.batch_size)]
                batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
                objective.train_step(batch, optimizers)
            times[mode].append((time.perf_counter() - started) / steps)
    return {mode: float(np.median(t)) for mode, t in times.items()}


def make_lpips(weights: Path | None):
    from vid2vid_app.errors import UserError
    from vid2vid_app.metrics import LPIPS

    try:
        return LPIPS("alexnet", weights_dir=weights) if weights else LPIPS("alexnet")
    except UserError as exc:
        print(f"LPIPS skipped: {exc}")
        return None


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="demo,cam03", help="clip sets: " + ", ".join(SETS))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the runs go [default: a temp folder]")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--keep", action="store_true", help="keep the runs and transfer outputs")
    parser.add_argument("--lpips-weights", type=Path, default=None)
    parser.add_argument("--timing-rounds", type=int, default=3, help="interleaved timing rounds (0: skip)")
    args = parser.parse_args()

    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="person_layer_bench."))
    runs.mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"tiny preset, {args.steps} steps, seed {args.seed}; runs in {runs}")
    lpips = make_lpips(args.lpips_weights)
    rows = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        videos = [SAMPLES / v for v in SETS[name]]
        masks_file = plates = None
        for mode, flag in [(m.strip(), MODES[m.strip()]) for m in args.modes.split(",")]:
            run = f"{name}_{flag.strip('-').replace('-', '_')}"
            started = time.perf_counter()
            per_step = train(videos, run, flag, args.steps, args.seed, runs)
            if masks_file is None:
                masks_file = next((runs / run / "data").glob("masks_*.u8"))
                with np.load(next((runs / run / "data").glob("plates_*.npz"))) as z:
                    plates = z["plates"]
            result = measure(runs / run / "model.pt", runs, lpips, masks_file, plates)
            result.update(set=name, mode=mode, s_step=per_step, wall=time.perf_counter() - started)
            rows.append(result)
            print(f"  {name} / {mode}: done in {result['wall']:.0f} s", flush=True)
        if args.timing_rounds > 0:
            timed = interleaved_step_times(runs / f"{name}_person_layer", args.timing_rounds)
            for r in rows:
                if r["set"] == name:
                    r["step"] = timed[r["mode"]]
    print()
    print(f"{'set':<6} {'mode':<13} {'frames':>6} {'PSNR':>6} {'SSIM':>6} {'LPIPS':>6} {'pose':>6} "
          f"{'bg flick':>8} {'s/step':>7} {'step (interleaved)':>18} {'mean-frame PSNR':>16}")
    for r in rows:
        print(f"{r['set']:<6} {r['mode']:<13} {r['frames']:>6} {fmt(r['psnr']):>6} {fmt(r['ssim'], 3):>6} "
              f"{fmt(r['lpips'], 3):>6} {fmt(r['pose'], 3):>6} {fmt(r['bg_flicker']):>8} {fmt(r['s_step'], 3):>7} "
              f"{fmt(r.get('step', float('nan')), 3):>18} {fmt(r['mean_psnr']):>16}")
    print("\nwhere the error is (PSNR in dB over the person, grown as for the plates, and over the rest):")
    print(f"{'set':<6} {'mode':<13} {'PSNR':>6} {'person':>7} {'bg':>6} {'plate bg':>10} "
          f"{'mean-frame person':>17} {'nearest-pose person':>19}")
    for r in rows:
        print(f"{r['set']:<6} {r['mode']:<13} {fmt(r['psnr']):>6} {fmt(r['psnr_person']):>7} {fmt(r['psnr_bg']):>6} "
              f"{fmt(r['perfect_bg']):>10} {fmt(r['mean_person']):>17} {fmt(r['nearest_person']):>19}")
    if not args.keep and args.runs_dir is None:
        shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    main()
