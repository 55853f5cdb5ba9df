"""Training a translation model: data -> networks -> objective -> the shared training loop -> model.pt.

:func:`train_translation` runs one pix2pix, CycleGAN or ToDayGAN training from a :class:`TranslateConfig` into a
run folder (``RUNS/NAME/``), which the shared loop fills with config.json, log.txt, stats.jsonl,
samples/ and checkpoints/. When training finishes it writes ``RUNS/NAME/model.pt`` (see
:mod:`vid2vid_app.translate.model`). pix2pix holds out the last pairs for validation: L1 (on the
[-1, 1] scale) and PSNR of the generator on them are logged at every checkpoint, next to the identity
baseline (output = input) computed once.

Under ``torchrun`` every process runs :func:`train_translation`; rank 0 alone clears or refuses the
run folder, writes its files and the model, while the others wait for it (see
:mod:`vid2vid_app.training.distributed`).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import from_dict, to_dict
from ..errors import UserError
from ..runs import MODEL_FILE, check_run_folder, open_run
from .config import DataSpec, TranslateConfig, validate
from .data import (
    PairedDataset,
    Preprocess,
    UnpairedDataset,
    aligned_folder,
    domain_frames,
    pair_folders,
    paired_videos,
    split_validation,
    stack_pairs,
)
from .model import save_model

SETTINGS_FILE = "translate.json"


@dataclass
class PreparedData:
    """Datasets for one run plus the notes worth telling the user (resized images, ...)."""

    train: torch.utils.data.Dataset
    val: PairedDataset | None = None
    notes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def preprocess_of(cfg: TranslateConfig) -> Preprocess:
    return Preprocess(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip)


def prepare_data(cfg: TranslateConfig, quiet: bool = True) -> PreparedData:
    """Build the datasets the config's data spec describes. ``A`` is always the generator's input:
    for pix2pix with direction BtoA the two sides are swapped here."""
    spec, prep, notes = cfg.data, preprocess_of(cfg), []
    kind = spec.kind()
    if kind is None:
        raise UserError("no training data given: use --paired DIR_A DIR_B, --aligned DIR or --paired-video "
                        "A.mp4 B.mp4 for pix2pix, --domain-a and --domain-b for cyclegan and todaygan.")
    if cfg.mode == "pix2pix":
        if kind == "unpaired":
            raise UserError("pix2pix trains on pairs; give --paired, --aligned or --paired-video "
                            "(--domain-a / --domain-b are for --mode cyclegan and todaygan).")
        if kind == "paired":
            if len(spec.paired) != 2:
                raise UserError("--paired takes two folders: DIR_A DIR_B.")
            a, b = pair_folders(spec.paired[0], spec.paired[1], prep, notes)
        elif kind == "aligned":
            a, b = aligned_folder(spec.aligned, prep, notes)
        else:
            if len(spec.paired_video) != 2:
                raise UserError("--paired-video takes two videos: A.mp4 B.mp4.")
            a, b = paired_videos(spec.paired_video[0], spec.paired_video[1], prep, spec.frame_step,
                                 spec.max_frames, quiet)
        if cfg.direction == "BtoA":
            a, b = b, a
        (ta, tb), val = split_validation(a, b, cfg.val_fraction, cfg.max_val)
        if val is None:
            notes.append(f"only {len(a)} pair(s): no validation pairs are held out.")
        val_set = PairedDataset(val[0], val[1], prep, train=False) if val else None
        return PreparedData(PairedDataset(ta, tb, prep, train=True), val_set, notes,
                            {"train_pairs": len(ta), "val_pairs": len(val[0]) if val else 0})
    # CycleGAN and ToDayGAN
    if kind != "unpaired":
        raise UserError(f"{cfg.mode} trains on two unpaired domains; give --domain-a and --domain-b.")
    if not spec.domain_a or not spec.domain_b:
        missing = "--domain-a" if not spec.domain_a else "--domain-b"
        raise UserError(f"{cfg.mode} needs both domains; {missing} is missing.")
    a = domain_frames(spec.domain_a, prep, spec.frame_step, spec.max_frames, notes, quiet, "domain A")
    b = domain_frames(spec.domain_b, prep, spec.frame_step, spec.max_frames, notes, quiet, "domain B")
    return PreparedData(UnpairedDataset(a, b, prep), None, notes, {"domain_a": len(a), "domain_b": len(b)})


def build_networks(cfg: TranslateConfig) -> dict[str, nn.Module]:
    """Generators and discriminators (weights N(0, 0.02)) named as the objective expects: PatchGANs,
    or for todaygan its three-view discriminators."""
    from ..models import build_discriminator, build_generator

    def generator() -> nn.Module:
        return build_generator(cfg.arch, in_channels=3, out_channels=3, ngf=cfg.ngf, norm=cfg.norm,
                               dropout=cfg.dropout, n_downs=cfg.n_downs, n_blocks=cfg.n_blocks)

    def discriminator(channels: int) -> nn.Module:
        arch = "todaygan" if cfg.mode == "todaygan" else "patch"
        return build_discriminator(arch, in_channels=channels, ndf=cfg.ndf, n_layers=cfg.n_layers_d,
                                   norm=cfg.norm_d)

    if cfg.mode == "pix2pix":
        nets = {"G": generator(), "D": discriminator(6)}  # D sees cat(input, output)
    else:
        nets = {"G_A": generator(), "G_B": generator(), "D_A": discriminator(3), "D_B": discriminator(3)}
    stride = nets["G" if cfg.mode == "pix2pix" else "G_A"].stride
    if cfg.crop_size % stride:
        raise UserError(f"crop size {cfg.crop_size} is not a multiple of {stride}, which {cfg.arch} needs; "
                        f"use e.g. --crop-size {max(stride, cfg.crop_size // stride * stride)}.")
    return nets


def build_objective(cfg: TranslateConfig, nets: dict[str, nn.Module]):
    from ..training import CycleGANObjective, Pix2PixObjective, ToDayGANObjective

    if cfg.mode == "pix2pix":
        return Pix2PixObjective(nets["G"], nets["D"], gan_mode=cfg.gan_mode, lambda_l1=cfg.lambda_l1)
    unpaired = ToDayGANObjective if cfg.mode == "todaygan" else CycleGANObjective
    return unpaired(nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"], gan_mode=cfg.gan_mode,
                    lambda_cycle=cfg.lambda_cycle, lambda_identity=cfg.lambda_identity, pool_size=cfg.pool_size)


def make_val_fn(val: PairedDataset, batch_size: int = 8) -> Callable[[nn.Module], dict[str, float]]:
    """A validation function for the loop: the generator's mean L1 ([-1, 1] scale) and PSNR (dB, on
    uint8 frames) on the held-out pairs, plus the identity baseline's (output = input) for reference.
    Dropout and batch norm run in eval mode, as at inference."""
    from ..imaging import to_uint8
    from ..metrics import psnr
    from ..training.modules import eval_mode

    inputs, targets = stack_pairs(val)
    baseline_l1 = float((inputs - targets).abs().mean())
    real_u8 = to_uint8(targets)
    baseline_psnr = float(sum(psnr(a, b) for a, b in zip(to_uint8(inputs), real_u8, strict=True)) / len(val))

    def val_fn(generator: nn.Module) -> dict[str, float]:
        device = next(generator.parameters()).device
        outputs = []
        with eval_mode(generator), torch.inference_mode():
            for i in range(0, len(inputs), batch_size):
                outputs.append(generator(inputs[i : i + batch_size].to(device)).float().cpu())
        out = torch.cat(outputs).clamp(-1, 1)
        out_u8 = to_uint8(out)
        return {
            "val_l1": float((out - targets).abs().mean()),
            "val_psnr": float(sum(psnr(a, b) for a, b in zip(out_u8, real_u8, strict=True)) / len(val)),
            "val_identity_l1": baseline_l1,
            "val_identity_psnr": baseline_psnr,
        }

    return val_fn


@dataclass
class TranslateTrainResult:
    """Summary of a finished training run."""

    run_dir: Path
    model_path: Path
    mode: str
    steps: int
    seconds: float
    val: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    precision: str = ""  # e.g. "bf16 autocast" or "fp32" ("" when the run had already finished)


def save_settings(cfg: TranslateConfig, run_dir: Path) -> None:
    from ..fileio import write_json_atomic

    write_json_atomic(run_dir / SETTINGS_FILE, to_dict(cfg))


def load_settings(run_dir: Path) -> TranslateConfig:
    """The TranslateConfig a run was started with (for --resume)."""
    path = Path(run_dir) / SETTINGS_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} is not a translate-video run (no {SETTINGS_FILE}); nothing to resume.")
    try:
        return from_dict(TranslateConfig, json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}).") from None


# Settings that may change when a run is resumed (the rest are the run's own, from translate.json).
RESUME_CHANGEABLE = frozenset({"steps", "decay_steps", "device", "num_workers", "checkpoint_every", "sample_every",
                               "log_every", "amp", "tensorboard", "cpu_bf16", "deterministic", "sync_bn",
                               "compile"})


def resumed_config(run_dir: Path, *, mode: str | None, settings: dict[str, Any], train: dict[str, Any],
                   data: DataSpec | None, given: set[str], overwrite: bool = False) -> tuple[TranslateConfig, list[str]]:
    """The config a resumed run continues with: its saved settings, with the ones in
    :data:`RESUME_CHANGEABLE` taken from ``settings`` / ``train`` (model and run options, None = not
    given) and the data replaced when ``data`` is given (it moved, or more was added). Returns it
    with the sorted names of ``given`` options that were ignored."""
    from ..config import replace_given

    check_run_folder(run_dir, "translate", resume=True, overwrite=overwrite)
    cfg = load_settings(run_dir)
    if mode is not None and mode != cfg.mode:
        raise UserError(f"run {run_dir.name} is a {cfg.mode} run; --mode {mode} does not match.")
    ignored = sorted((given & (set(settings) | set(train) | {"preset", "direction", "no_flip"})) - RESUME_CHANGEABLE)
    for key in RESUME_CHANGEABLE & set(settings):
        if settings[key] is not None:
            setattr(cfg, key, settings[key])
    cfg.train = replace_given(cfg.train, {k: v for k, v in train.items() if k in RESUME_CHANGEABLE})
    if data is not None:
        cfg.data = data
    return cfg, ignored


def data_sources(cfg: TranslateConfig) -> tuple[str, ...]:
    """Every training input path of ``cfg`` (which ``--overwrite`` must never delete)."""
    spec = cfg.data
    return (*spec.paired, *spec.paired_video, *spec.domain_a, *spec.domain_b, *((spec.aligned,) if spec.aligned else ()))


def train_translation(cfg: TranslateConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                      quiet: bool = False, log: Callable[[str], None] | None = None) -> TranslateTrainResult:
    """Train ``cfg`` into ``run_dir`` and write ``run_dir/model.pt``.

    ``resume`` continues from the run's latest checkpoint (exactly: step, LR, optimizer, RNG and data
    order); otherwise an existing run is refused, or deleted first with ``overwrite``. Notes about the
    data (e.g. images that were resized) go to log.txt and to ``log`` (e.g. the console). Under
    torchrun, only rank 0 touches the run folder, shows progress and calls ``log``.
    """
    from ..training import distributed

    validate(cfg)
    run_dir = Path(run_dir)
    info = distributed.setup(cfg.train.device)
    quiet = quiet or not info.is_main
    say = log if log is not None and info.is_main else (lambda _msg: None)
    start = time.perf_counter()
    distributed.run_on_main(lambda: check_run_folder(run_dir, "translate", resume=resume, overwrite=overwrite), info)
    # The data is read and checked before the run folder is touched, so a bad setting or bad data
    # never costs the run that --overwrite would replace.
    data = distributed.main_process_first(lambda: prepare_data(cfg, quiet=quiet), info)
    per_process = -(-len(data.train) // info.world_size)  # the items each process sees per epoch
    batch_size = min(cfg.train.batch_size, per_process)
    if batch_size < cfg.train.batch_size:
        data.notes.append(f"batch size lowered from {cfg.train.batch_size} to {batch_size}: the training set has "
                          f"only {len(data.train)} item(s)"
                          + (f", {per_process} per process." if info.enabled else "."))
    for note in data.notes:
        say(f"note: {note}")
    say(f"data: {', '.join(f'{k} {v}' for k, v in data.sizes.items())}")
    with contextlib.ExitStack() as run_lock:
        return _train_in_run(cfg, run_dir, data, batch_size, run_lock, info, resume=resume, overwrite=overwrite,
                             quiet=quiet, say=say, start=start)


def _train_in_run(cfg: TranslateConfig, run_dir: Path, data: PreparedData, batch_size: int,
                  run_lock: contextlib.ExitStack, info, *, resume: bool, overwrite: bool, quiet: bool,
                  say: Callable[[str], None], start: float) -> TranslateTrainResult:
    """Build the networks and train inside ``run_dir``, which rank 0 opens (and locks) for as long as
    ``run_lock`` is held; then write the model file."""
    from ..training import TrainConfig, distributed, train

    torch.manual_seed(cfg.train.seed)  # weight initialisation follows --seed, so runs are reproducible
    nets = build_networks(cfg)
    objective = build_objective(cfg, nets)
    steps, decay = cfg.total_steps(len(data.train))
    tcfg = TrainConfig.for_stage(cfg.train, steps, decay, batch_size=batch_size)

    def write_run_files() -> None:
        state = run_lock.enter_context(open_run(run_dir, "translate", resume=resume, overwrite=overwrite,
                                                keep_inside=data_sources(cfg)))
        save_settings(cfg, run_dir)  # the marker of a translate run, written first
        _append_log(run_dir, [f"note: {n}" for n in [*state.notes, *data.notes]] + [f"data: {json.dumps(data.sizes)}"])
        for note in state.notes:
            say(f"note: {note}")
        state.commit()

    distributed.run_on_main(write_run_files, info)
    val_fn = make_val_fn(data.val) if data.val is not None else None
    app_config = {"translate": to_dict(cfg), "data_sizes": data.sizes}
    result = train(objective, data.train, tcfg, run_dir, resume=resume, quiet=quiet, app_config=app_config,
                   val_fn=val_fn, stage="main")

    def export() -> tuple[Path, dict[str, float]]:
        """The finished model: G-only export(s) + what inference needs to know."""
        val = dict(result.val)  # the loop validates at the last step; a run resumed when already
        if not val and val_fn is not None:  # finished did not, so validate here
            val = val_fn(objective.generator())
        if cfg.mode == "pix2pix":
            generators = {cfg.direction: objective.raw("G")}
        else:
            generators = {"AtoB": objective.raw("G_A"), "BtoA": objective.raw("G_B")}
        meta: dict[str, Any] = {"val": val, "steps": result.step, "data_sizes": data.sizes}
        path = save_model(run_dir / MODEL_FILE, cfg.mode, generators, cfg.direction, cfg.crop_size,
                          to_dict(cfg), meta)
        return path, val

    model_path, val = distributed.run_on_main(export, info)
    return TranslateTrainResult(run_dir=run_dir, model_path=model_path, mode=cfg.mode,
                                steps=result.step,
                                seconds=time.perf_counter() - start,
                                val={k: v for k, v in val.items() if math.isfinite(v)}, notes=data.notes,
                                precision=result.precision)


def _append_log(run_dir: Path, lines: list[str]) -> None:
    if not lines:
        return
    with open(run_dir / "log.txt", "a") as f:
        for line in lines:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [translate] {line}\n")

