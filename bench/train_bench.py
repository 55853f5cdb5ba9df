"""Training-step and inference speed of pix2pix, CycleGAN and pix2pixHD (global) on this machine.

    python bench/train_bench.py              # ngf 64 and 32, 2 measured steps per variant
    python bench/train_bench.py --quick      # ngf 64 only, 1 measured step
    python bench/train_bench.py --models pix2pix,hd --ngf 32 --steps 5 --rounds 2
    python bench/train_bench.py --no-inference --ngf 64 --variants "library bf16"  # plain, library, library bf16
    python bench/train_bench.py --device cuda  # GPU variants (below), 3 warm-up + 20 measured steps

For each model the same networks (same seed) run one training iteration per step in variants
(CPU, the default device):

  plain eager        the reference implementations' structure on default settings: contiguous
                     (NCHW) tensors, Adam's per-parameter loop (foreach=False), gradients zeroed
                     in place (set_to_none=False), glibc's default allocator behaviour;
                     pix2pixHD also back-propagates the generator loss into D's weights (its
                     reference does not freeze D in the G step)
  + channels_last    plain, with weights and images in channels_last
  + fused Adam       plain, with the fused Adam kernel
  + set_to_none      plain, with gradients dropped instead of zeroed
  + frozen D         (pix2pixHD) plain, with D's weights frozen during the G step
  + memory reuse     plain, with freed memory kept for reuse (vid2vid_app.device.reuse_freed_memory)
  library            the vid2vid_app.training objective, set up as the training loop does on this
                     device in fp32 (on CPU: fused Adam, set_to_none, frozen D, memory reuse;
                     channels_last is used on CUDA only)
  library bf16       library with bf16 autocast: what the training loop runs by default on a CPU
                     with native bf16 (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower
  library bf16 + compile   library bf16 with each network in torch.compile (--compile); its first
                     step, which compiles, is timed apart and printed below the table (only when
                     named in --variants: compiling takes minutes)

On CUDA (``--device cuda``) the variants are the ones that matter on a GPU; cuDNN autotuning is
on in all of them (as the training loop has it), fp32 convolutions use cuDNN's default (TF32 on
Ampere and later):

  plain eager        as on CPU: fp32, contiguous, Adam foreach=False, set_to_none=False
  + bf16 autocast    plain, with forward passes and losses under bf16 autocast (no grad scaler)
  + channels_last    plain (fp32), with weights and images in channels_last
  + bf16 + ch_last   both: tensor-core convolutions want NHWC half-precision
  + fused Adam       plain, with the fused Adam kernel
  + set_to_none      plain, with gradients dropped instead of zeroed
  + frozen D         (pix2pixHD) plain, with D's weights frozen during the G step
  library            the vid2vid_app.training objective as the loop sets it up on CUDA: bf16
                     autocast (vid2vid_app.training.Amp), channels_last, fused Adam, set_to_none,
                     frozen D

and inference compares no_grad, inference_mode, + channels_last, + bf16 autocast and channels_last
+ bf16 (what translate-video and dance transfer run on a GPU). On CUDA all variants run in this
process (a fresh CUDA context per variant would cost seconds each) and every timing is bracketed
by torch.cuda.synchronize(); the peak GPU memory of each variant is printed instead of CPU time.

``--variants`` picks the variants to run (plain eager and library always run: the first is the
baseline of the speed-ups, the second the other side of the loss comparison).

On CPU every variant runs in a fresh process (allocator settings and caches cannot leak between them),
after warm-up steps; medians are reported as wall time and as the process's CPU time (user +
system), which other processes sharing the CPU disturb much less. The plain and library losses
computed before the first update are compared (identical math: relative difference printed).
Inference compares no_grad, inference_mode, + channels_last and + memory reuse per generator.

Reference (the pytorch-CycleGAN-and-pix2pix / pix2pixHD code on a comparable 2-core CPU, ngf 64):
pix2pix step 0.75-0.97 s, CycleGAN step 11.4 s, pix2pixHD global 512x256 (no VGG) 5.8 s,
unet_256 inference 0.11 s.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vid2vid_app.config import cpu_has_native_bf16  # noqa: E402
from vid2vid_app.device import resolve_device, reuse_freed_memory  # noqa: E402
from vid2vid_app.models import build_discriminator, build_generator  # noqa: E402
from vid2vid_app.models.losses import (  # noqa: E402
    ImagePool,
    cycle_loss,
    feature_matching_loss,
    gan_loss,
    identity_loss,
)
from vid2vid_app.training import Amp, CycleGANObjective, Pix2PixHDObjective, Pix2PixObjective  # noqa: E402
from vid2vid_app.training.objectives.base import detach_features  # noqa: E402

REFERENCE_S = {"pix2pix": "0.75-0.97", "cyclegan": "11.4", "hd": "5.8"}
SHAPES = {"pix2pix": (1, 3, 256, 256), "cyclegan": (1, 3, 256, 256), "hd": (1, 3, 256, 512)}
# Losses computed before any optimizer step of the iteration, compared between plain and library.
# Later ones see weights after one Adam step, which turns rounding noise in near-zero gradients
# into lr-sized differences (Adam's first step is about lr * sign(grad)): no test of the math.
THREADS: int | None = None  # --threads, passed on to the child processes
DEVICE = torch.device("cpu")  # --device
GPU_VARIANTS = False  # the CUDA variant set, all in this process (--device cuda, or --gpu-variants on CPU)
PRE_UPDATE_LOSSES = {"pix2pix": ("D",), "cyclegan": ("G",), "hd": ("G", "D")}
ONLY: set[str] | None = None  # --variants: the training variants to run (None: all)


# ----------------------------------------------------------------------------------- networks
def build(model: str, ngf: int):
    """(networks dict, input shape (N, C, H, W), library objective factory)."""
    torch.manual_seed(0)
    if model == "pix2pix":
        nets = {"G": build_generator("unet_256", ngf=ngf), "D": build_discriminator("patch", in_channels=6)}
        return nets, SHAPES[model], lambda n: Pix2PixObjective(n["G"], n["D"])
    if model == "cyclegan":
        nets = {"G_A": build_generator("resnet_9blocks", ngf=ngf), "G_B": build_generator("resnet_9blocks", ngf=ngf),
                "D_A": build_discriminator("patch", in_channels=3, norm="instance"),
                "D_B": build_discriminator("patch", in_channels=3, norm="instance")}
        return nets, SHAPES[model], lambda n: CycleGANObjective(n["G_A"], n["G_B"], n["D_A"], n["D_B"])
    if model == "hd":
        nets = {"G": build_generator("global", ngf=ngf), "D": build_discriminator("multiscale", in_channels=6)}
        return nets, SHAPES[model], lambda n: Pix2PixHDObjective(n["G"], n["D"], vgg=None)
    raise ValueError(model)


def set_requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


# ------------------------------------------------------------------ plain reference-style steps
def plain_pix2pix(n, opt, A, B, set_to_none, ac=contextlib.nullcontext):
    """``ac``: the autocast context for forward passes and losses (a no-op in fp32)."""
    G, D = n["G"], n["D"]
    with ac():
        fake = G(A)
    set_requires_grad([D], True)
    opt["D"].zero_grad(set_to_none=set_to_none)
    with ac():
        loss_d = 0.5 * (gan_loss(D(torch.cat((A, fake.detach()), 1)), False, "vanilla")
                        + gan_loss(D(torch.cat((A, B), 1)), True, "vanilla"))
    loss_d.backward()
    opt["D"].step()
    set_requires_grad([D], False)
    opt["G"].zero_grad(set_to_none=set_to_none)
    with ac():
        loss_g = gan_loss(D(torch.cat((A, fake), 1)), True, "vanilla") + F.l1_loss(fake.float(), B) * 100
    loss_g.backward()
    opt["G"].step()
    return {"G": loss_g.item(), "D": loss_d.item()}


def plain_cyclegan(n, opt, A, B, set_to_none, pools, ac=contextlib.nullcontext):
    G_A, G_B, D_A, D_B = n["G_A"], n["G_B"], n["D_A"], n["D_B"]
    with ac():
        fake_b = G_A(A)
        rec_a = G_B(fake_b)
        fake_a = G_B(B)
        rec_b = G_A(fake_a)
    set_requires_grad([D_A, D_B], False)
    opt["G"].zero_grad(set_to_none=set_to_none)
    with ac():
        loss_g = (identity_loss(G_A(B), B) * 5 + identity_loss(G_B(A), A) * 5
                  + gan_loss(D_A(fake_b), True, "lsgan") + gan_loss(D_B(fake_a), True, "lsgan")
                  + cycle_loss(rec_a, A) * 10 + cycle_loss(rec_b, B) * 10)
    loss_g.backward()
    opt["G"].step()
    set_requires_grad([D_A, D_B], True)
    opt["D"].zero_grad(set_to_none=set_to_none)
    pb, pa = pools[1].query(fake_b), pools[0].query(fake_a)
    with ac():
        loss_da = 0.5 * (gan_loss(D_A(B), True, "lsgan") + gan_loss(D_A(pb.detach()), False, "lsgan"))
    loss_da.backward()
    with ac():
        loss_db = 0.5 * (gan_loss(D_B(A), True, "lsgan") + gan_loss(D_B(pa.detach()), False, "lsgan"))
    loss_db.backward()
    opt["D"].step()
    return {"G": loss_g.item(), "D": loss_da.item() + loss_db.item()}


def plain_hd(n, opt, A, B, set_to_none, freeze_d=False, ac=contextlib.nullcontext):
    G, D = n["G"], n["D"]
    with ac():
        fake = G(A)
        pred_fake_pool = D(torch.cat((A, fake.detach()), 1))
        pred_real = D(torch.cat((A, B), 1))
    if freeze_d:
        set_requires_grad([D], False)
    with ac():
        pred_fake = D(torch.cat((A, fake), 1))
        loss_g = (gan_loss(pred_fake, True, "lsgan")
                  + feature_matching_loss(pred_fake, detach_features(pred_real), 3, 2) * 10)
        loss_d = 0.5 * (gan_loss(pred_fake_pool, False, "lsgan") + gan_loss(pred_real, True, "lsgan"))
    opt["G"].zero_grad(set_to_none=set_to_none)
    loss_g.backward()
    opt["G"].step()
    if freeze_d:
        set_requires_grad([D], True)
    opt["D"].zero_grad(set_to_none=set_to_none)
    loss_d.backward()
    opt["D"].step()
    return {"G": loss_g.item(), "D": loss_d.item()}


# ------------------------------------------------------------------------------ variants
TRAIN_VARIANTS = ["plain eager", "+ channels_last", "+ fused Adam", "+ set_to_none", "+ frozen D",
                  "+ memory reuse", "library", "library bf16", "library bf16 + compile"]
INFERENCE_MODES = ["no_grad", "inference_mode", "inference_mode + channels_last", "inference_mode + memory reuse"]
CUDA_TRAIN_VARIANTS = ["plain eager", "+ bf16 autocast", "+ channels_last", "+ bf16 + ch_last", "+ fused Adam",
                       "+ set_to_none", "+ frozen D", "library"]
CUDA_INFERENCE_MODES = ["no_grad", "inference_mode", "inference_mode + channels_last",
                        "inference_mode + bf16 autocast", "inference_mode + channels_last + bf16"]


def variants_for(model: str) -> list[str]:
    variants = CUDA_TRAIN_VARIANTS if GPU_VARIANTS else TRAIN_VARIANTS
    # "plain eager" is the baseline of every table and "library" the other side of the loss check;
    # compiling takes minutes per model, so that variant runs only when named.
    if ONLY is None:
        return [v for v in variants if (v != "+ frozen D" or model == "hd") and not v.endswith("+ compile")]
    return [v for v in variants if (v != "+ frozen D" or model == "hd")
            and (v in ONLY or v in ("plain eager", "library"))]


def inference_modes() -> list[str]:
    return CUDA_INFERENCE_MODES if GPU_VARIANTS else INFERENCE_MODES


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def bf16_autocast():
    return torch.autocast(device_type=DEVICE.type, dtype=torch.bfloat16)


def make_step(model: str, variant: str, nets, objective_factory) -> Callable:
    """A function (A, B) -> losses running one iteration of ``variant``; builds its optimizers."""
    if variant.startswith("library"):
        objective = objective_factory(nets)
        opts = objective.make_optimizers(2e-4, (0.5, 0.999))
        # CUDA -> bf16 (or fp16 + scaler); CPU -> fp32, or bf16 autocast for "library bf16".
        amp = Amp(DEVICE, cpu_bf16=variant.startswith("library bf16"))
        # Same totals the plain steps return (pix2pix / pix2pixHD: D = 0.5 * (real + fake)).
        d_weight = 1.0 if model == "cyclegan" else 0.5

        def library_step(A, B):
            losses = objective.train_step({"A": A, "B": B}, opts, amp)
            return {"G": sum(v for k, v in losses.items() if not k.startswith("D")),
                    "D": d_weight * sum(v for k, v in losses.items() if k.startswith("D"))}
        return library_step

    fused = variant == "+ fused Adam"
    set_to_none = variant == "+ set_to_none"
    ac = bf16_autocast if "bf16" in variant else contextlib.nullcontext

    def adam(params):
        return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), foreach=False, fused=fused or None)

    if model == "cyclegan":
        opts = {"G": adam(itertools.chain(nets["G_A"].parameters(), nets["G_B"].parameters())),
                "D": adam(itertools.chain(nets["D_A"].parameters(), nets["D_B"].parameters()))}
        pools = (ImagePool(50, seed=0), ImagePool(50, seed=1))
        return lambda A, B: plain_cyclegan(nets, opts, A, B, set_to_none, pools, ac=ac)
    opts = {"G": adam(nets["G"].parameters()), "D": adam(nets["D"].parameters())}
    if model == "pix2pix":
        return lambda A, B: plain_pix2pix(nets, opts, A, B, set_to_none, ac=ac)
    return lambda A, B: plain_hd(nets, opts, A, B, set_to_none, freeze_d=variant == "+ frozen D", ac=ac)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: user + system) of one call; on CUDA the GPU's
    queue is drained before and after, so the wall time covers the call's GPU work."""
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - t0, time.process_time() - c0


def _start_variant() -> None:
    """CUDA (variants share this process): free the previous variant's memory, reset the peak."""
    if DEVICE.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(DEVICE)
        torch.backends.cudnn.benchmark = True  # as train() has it on CUDA


def _peak_mib() -> float:
    return torch.cuda.max_memory_allocated(DEVICE) / 2**20 if DEVICE.type == "cuda" else float("nan")


def child_training(model: str, ngf: int, variant: str, warmup: int, steps: int) -> dict:
    """On CPU this runs in a fresh process, so allocator settings and caches of one variant never
    leak into another; on CUDA in this process."""
    if (variant == "+ memory reuse" or variant.startswith("library")) and DEVICE.type == "cpu":  # as train() on CPU
        reuse_freed_memory()
    _start_variant()
    nets, shape, factory = build(model, ngf)
    if variant.endswith("+ compile"):  # as the loop with --compile: the objective calls the wrappers
        nets = {name: torch.compile(net) for name, net in nets.items()}
    # The library uses channels_last on CUDA only.
    cl = variant in ("+ channels_last", "+ bf16 + ch_last") or (variant == "library" and GPU_VARIANTS)
    fmt = torch.channels_last if cl else torch.contiguous_format
    for net in nets.values():
        net.to(DEVICE, memory_format=fmt).train()
    torch.manual_seed(1)
    A, B = (t.to(DEVICE).contiguous(memory_format=fmt)
            for t in (torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1))
    step = make_step(model, variant, nets, factory)
    torch.manual_seed(2)  # same dropout masks in every variant
    t0 = time.perf_counter()
    first = step(A, B)
    first_s = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step(A, B)
    times = [timed(lambda: step(A, B)) for _ in range(steps)]
    return {"first_losses": first, "wall": [t[0] for t in times], "cpu": [t[1] for t in times],
            "peak_mib": _peak_mib(), "first_step_s": first_s}


def child_inference(arch: str, ngf: int, mode: str, steps: int, warmup: int = 1) -> dict:
    if mode.endswith("memory reuse"):
        reuse_freed_memory()
    _start_variant()
    torch.manual_seed(0)
    G = build_generator(arch, ngf=ngf).to(DEVICE).eval()
    shape = (1, 3, 256, 512) if arch == "global" else (1, 3, 256, 256)
    x = (torch.rand(shape) * 2 - 1).to(DEVICE)
    if "channels_last" in mode:
        G.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.no_grad if mode == "no_grad" else torch.inference_mode
    ac = bf16_autocast if "bf16" in mode else contextlib.nullcontext
    with ctx(), ac():
        for _ in range(max(1, warmup)):
            G(x)  # warm-up (and cuDNN autotuning on CUDA)
        times = [timed(lambda: G(x)) for _ in range(steps)]
    return {"wall": [t[0] for t in times], "cpu": [t[1] for t in times], "peak_mib": _peak_mib()}


def run_child(*args) -> dict:
    if GPU_VARIANTS:  # in this process: see the module docstring
        kind, *rest = args
        return child_training(*rest) if kind == "train" else child_inference(*rest)
    cmd = [sys.executable, __file__, "--child", json.dumps(args), "--device", str(DEVICE)]
    if THREADS:
        cmd += ["--threads", str(THREADS)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(title: str, rows: dict[str, dict], base_name: str, unit: str, extra: str = "") -> None:
    base_wall = statistics.median(rows[base_name]["wall"])
    base_cpu = statistics.median(rows[base_name]["cpu"])
    n = len(rows[base_name]["wall"])
    print(f"\n{title}{extra}")
    if GPU_VARIANTS:  # CPU time means little while the CPU waits for the GPU
        print(f"  {'variant':<40}{'wall ' + unit:>14}{'speed-up':>9}{'peak MiB':>10}   (median of {n})")
        for name, r in rows.items():
            wall = statistics.median(r["wall"])
            print(f"  {name:<40}{wall * 1000:>14.2f}{base_wall / wall:>8.2f}x{max(r['peak_mib']):>10.0f}")
    else:
        print(f"  {'variant':<32}{'wall ' + unit:>14}{'speed-up':>9}{'CPU ' + unit:>14}{'speed-up':>9}   (median of {n})")
        for name, r in rows.items():
            wall, cpu = statistics.median(r["wall"]), statistics.median(r["cpu"])
            print(f"  {name:<32}{wall * 1000:>14.0f}{base_wall / wall:>8.2f}x{cpu * 1000:>14.0f}{base_cpu / cpu:>8.2f}x")
    sys.stdout.flush()


def bench_training(model: str, ngf: int, warmup: int, steps: int, rounds: int) -> None:
    rows: dict[str, dict] = {}
    for _ in range(rounds):
        for variant in variants_for(model):
            r = run_child("train", model, ngf, variant, warmup, steps)
            row = rows.setdefault(variant, {"wall": [], "cpu": [], "peak_mib": [], "first_losses": r["first_losses"]})
            row["wall"] += r["wall"]
            row["cpu"] += r["cpu"]
            row["peak_mib"].append(r.get("peak_mib", float("nan")))
            row.setdefault("first_step_s", []).append(r["first_step_s"])
    a, b = rows["plain eager"]["first_losses"], rows["library"]["first_losses"]
    diff = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in PRE_UPDATE_LOSSES[model])
    h, w = SHAPES[model][2:]
    imgs = 1 / statistics.median(rows["library"]["wall"])
    reference = f"reference ngf 64 on a 2-core CPU: {REFERENCE_S[model]} s/step; " if DEVICE.type == "cpu" else ""
    precision = " (library in bf16: differences of ~1e-2 are rounding)" if DEVICE.type == "cuda" else ""
    report(f"{model} ngf {ngf} {w}x{h} batch 1 training step on {DEVICE.type}", rows, "plain eager", "ms/step",
           f" ({reference}library {imgs:.2f} img/s); "
           f"plain vs library pre-update loss rel. diff {diff:.1e}{precision}")
    if DEVICE.type == "cpu" and ngf == 64:
        # The goal: at most half the reference's step time (the upper end of a range).
        ref_s = float(REFERENCE_S[model].split("-")[-1])
        print("  vs the reference's " + f"{ref_s} s/step: " + ", ".join(
            f"{name} {ref_s / statistics.median(rows[name]['wall']):.2f}x" for name in rows if name.startswith("library")))
    for name in (n for n in rows if n.endswith("+ compile")):
        print(f"  {name}: first step (compiling) {statistics.median(rows[name]['first_step_s']):.1f} s")


def bench_inference(arch: str, ngf: int, steps: int, rounds: int, warmup: int = 1) -> None:
    rows: dict[str, dict] = {}
    for _ in range(rounds):
        for mode in inference_modes():
            r = run_child("infer", arch, ngf, mode, steps, warmup)
            row = rows.setdefault(mode, {"wall": [], "cpu": [], "peak_mib": []})
            row["wall"] += r["wall"]
            row["cpu"] += r["cpu"]
            row["peak_mib"].append(r.get("peak_mib", float("nan")))
    size = "512x256" if arch == "global" else "256x256"
    report(f"inference {arch} ngf {ngf} {size} batch 1 on {DEVICE.type} (eval mode)", rows, "no_grad", "ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ngf 64 only, 1 round, few steps (CPU: 1 warm-up + 1 measured)")
    parser.add_argument("--models", default="pix2pix,cyclegan,hd", help="comma list of pix2pix, cyclegan, hd")
    parser.add_argument("--ngf", default=None, help="comma list of generator widths [64,32; --quick: 64]")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--gpu-variants", action="store_true",
                        help="the CUDA variant set, run in this process, even on CPU (a dry run of the GPU code path)")
    parser.add_argument("--steps", type=int, default=None, help="measured steps per variant and round [CPU 2, CUDA 20]")
    parser.add_argument("--warmup", type=int, default=None,
                        help="unmeasured steps before measuring (at least 1) [CPU 1, CUDA 3]")
    parser.add_argument("--rounds", type=int, default=1, help="times the variant sweep is repeated")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each run [torch's default]")
    parser.add_argument("--variants", default=None,
                        help="comma list of training variants to run besides plain eager and library "
                             "(e.g. 'library bf16') [all]")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global DEVICE, GPU_VARIANTS
    DEVICE = resolve_device(args.device)
    cuda = DEVICE.type == "cuda"
    GPU_VARIANTS = cuda or args.gpu_variants
    if args.child:
        kind, *rest = json.loads(args.child)
        result = child_training(*rest) if kind == "train" else child_inference(*rest)
        print(json.dumps(result))
        return
    if args.quick:
        args.steps, args.warmup, args.rounds = (5, 2, 1) if cuda else (1, 1, 1)
    global THREADS, ONLY
    THREADS = args.threads
    ONLY = {v.strip() for v in args.variants.split(",")} if args.variants else None
    args.ngf = args.ngf or ("64" if args.quick else "64,32")
    args.steps = args.steps or (20 if cuda else 2)
    args.warmup = max(1, args.warmup or (3 if cuda else 1))
    ngfs = [int(v) for v in args.ngf.split(",")]

    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average at start {os.getloadavg()[0]:.1f}")
    if cuda:
        print(f"device: {DEVICE} {torch.cuda.get_device_name(DEVICE)}, CUDA {torch.version.cuda}, cuDNN "
              f"{torch.backends.cudnn.version()}, cuDNN TF32 {torch.backends.cudnn.allow_tf32}, matmul TF32 "
              f"{torch.backends.cuda.matmul.allow_tf32}, bf16 supported {torch.cuda.is_bf16_supported()}")
    if GPU_VARIANTS:
        print(f"settings: all variants in this process, cuDNN autotuning on; warm-up {args.warmup}, measured "
              f"{args.steps} x {args.rounds} round(s); wall = elapsed time between torch.cuda.synchronize() calls")
    else:
        print(f"settings: device cpu, fp32 (library bf16: bf16 autocast; native bf16 on this CPU: "
              f"{cpu_has_native_bf16()}); each variant in a fresh process; warm-up {args.warmup}, measured "
              f"{args.steps} x {args.rounds} round(s); wall = elapsed time, CPU = user + system time of the "
              "process (less sensitive to other processes sharing the CPU)")
    t0 = time.perf_counter()
    if not args.no_inference:
        inference_steps = (10 if args.quick else 50) if cuda else (3 if args.quick else 5)
        for ngf in ngfs:
            for arch in ("unet_256", "resnet_9blocks", "global"):
                bench_inference(arch, ngf, inference_steps, args.rounds, args.warmup)
    if not args.no_training:
        for ngf in ngfs:
            for model in args.models.split(","):
                bench_training(model, ngf, args.warmup, args.steps, args.rounds)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at end {os.getloadavg()[0]:.1f} "
          f"(above {os.cpu_count()}: other processes shared the CPU)")


if __name__ == "__main__":
    main()
