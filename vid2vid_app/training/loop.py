"""The one training loop shared by pix2pix, CycleGAN, pix2pixHD and the dance stages.

``train(objective, dataset, cfg, run_dir)`` runs ``cfg.steps`` iterations of
``objective.train_step`` over batches of ``dataset`` (items: dicts of tensors) and writes the run
folder described in :mod:`.runlog`. What it takes care of:

- LR: constant, then linear decay to 0 over the last ``decay_steps`` (:mod:`.schedule`).
- Device and speed: CUDA when available; autocast (bf16 where supported, else fp16 with a grad
  scaler) on CUDA, bf16 autocast on CPUs with native bf16 (``cpu_bf16``: None decides by the CPU,
  and the decided value is what config.json and the checkpoints record); ``channels_last``
  weights and images on CUDA; fused Adam;
  on CPU, freed memory is kept for reuse instead of being faulted in again every step.
- Exact resume (``resume=True``): the checkpoint restores step, weights, optimizer and scaler
  state, objective state (image pools), all RNG states and the position in the epoch's data order
  (:mod:`.sampler`), so 2 + resume + 2 steps equal 4 straight steps. A finished stage returns at
  once (its trained weights loaded into the objective).
- Safety: a non-finite loss stops with :class:`UserError` naming the step and the last good
  checkpoint (no checkpoint of the bad state is written). Ctrl-C finishes the current step, writes
  a checkpoint and raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt`` and a
  ``UserError``) whose message says how to resume; a second Ctrl-C stops at once.
- Distributed: under torchrun, DDP per trainable network, split data, rank 0 writes (:mod:`.distributed`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import TrainSettings, resolve_cpu_bf16, to_dict
from ..device import cpp_compiler, reuse_freed_memory, thread_note
from ..errors import UserError
from ..progress import progress
from . import distributed
from .amp import Amp
from .checkpoint import find_checkpoint, load_checkpoint, save_rotating
from .modules import kept_mode, unwrap
from .objectives.base import Objective
from .runlog import RunLog
from .sampler import EpochSampler, SeededDataset
from .schedule import lr_factor, set_lr


@dataclass
class TrainConfig(TrainSettings):
    """Settings of one training stage: the run's :class:`~vid2vid_app.config.TrainSettings` and the
    stage's length (saved in config.json and in every checkpoint)."""

    steps: int = 1000                 # total iterations (one batch each)
    decay_steps: int = 500            # LR constant, then linear to 0 over the last decay_steps
    #                                   (more than steps: the decay spans the whole run)

    @classmethod
    def for_stage(cls, settings: TrainSettings, steps: int, decay_steps: int, **changes: Any) -> TrainConfig:
        """The loop's config for a stage of ``steps`` (``decay_steps`` of them decaying) run with
        ``settings``; ``changes`` replace single settings (e.g. a batch size lowered to fit the data)."""
        values = {f.name: getattr(settings, f.name) for f in fields(TrainSettings)}
        return cls(steps=steps, decay_steps=decay_steps, **{**values, **changes})

    def validate(self) -> None:
        """Raise :class:`UserError` for impossible settings."""
        if self.steps < 1:
            raise UserError(f"invalid training settings: steps must be at least 1 (got {self.steps}).")
        if self.decay_steps < 0:
            raise UserError(f"invalid training settings: decay steps must be 0 or more (got {self.decay_steps}).")
        super().validate()


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    step: int                                   # steps completed (== cfg.steps unless stopped)
    losses: dict[str, float]                    # losses of the last step run (empty if none ran)
    checkpoint: Path | None                     # the stage's latest checkpoint
    run_dir: Path
    stage: str
    start_step: int = 0                         # step the run started or resumed at
    seconds: float = 0.0                        # wall time of this call
    val: dict[str, float] = field(default_factory=dict)  # last validation metrics
    precision: str = ""                         # e.g. "bf16 autocast", "fp32" ("" if no step had to run)


class TrainingInterrupted(UserError, KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was written; the message says how to resume."""


def checkpoint_path(run_dir: str | Path, stage: str = "main") -> Path:
    """``run_dir/checkpoints/<stage>_latest.pt``."""
    return Path(run_dir) / "checkpoints" / f"{stage}_latest.pt"


def train(objective: Objective, dataset: Dataset, cfg: TrainConfig, run_dir: str | Path, *,
          resume: bool = False, quiet: bool = False, app_config: Mapping[str, Any] | None = None,
          val_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
          stage: str = "main") -> TrainResult:
    """Train ``objective`` on ``dataset`` for ``cfg.steps`` steps; see the module docstring.

    ``run_dir`` is created if needed; refusing to reuse an existing run is the caller's job (it
    passes ``resume``). Without ``resume`` an existing checkpoint of ``stage`` is replaced.
    ``val_fn(generator)`` runs on rank 0 at each checkpoint and returns metrics for stats.jsonl;
    the generator is handed over in train mode and its mode is restored afterwards.
    """
    cfg.validate()
    if len(dataset) == 0:
        raise UserError("the training dataset is empty.")
    info = distributed.setup(cfg.device)
    return _Trainer(objective, dataset, cfg, Path(run_dir), info, quiet, app_config, val_fn, stage,
                    resume).run()


class _Trainer:
    """State of one :func:`train` call; methods in the order they run."""

    def __init__(self, objective, dataset, cfg: TrainConfig, run_dir: Path, info, quiet, app_config, val_fn,
                 stage, resume):
        self.objective, self.dataset, self.cfg = objective, dataset, cfg
        self.run_dir, self.info, self.quiet = run_dir, info, quiet
        self.app_config = dict(app_config) if app_config is not None else None
        self.val_fn, self.stage, self.resume = val_fn, stage, resume
        self.device = info.device
        # channels_last pays off with GPU kernels; on CPU the instance/batch norms of these networks
        # convert back and forth around every conv, which costs more than it saves.
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        self.ckpt = checkpoint_path(run_dir, stage)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.last_saved: Path | None = None
        self.last_saved_step = -1
        self.last_losses: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.amp: Amp | None = None  # set once training is about to run

    # -- setup ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        t0 = time.perf_counter()
        # An automatic CPU precision is decided now, so config.json and the checkpoints record it.
        self.cfg = cfg = dataclasses.replace(self.cfg, cpu_bf16=resolve_cpu_bf16(self.cfg.cpu_bf16))
        self.log = RunLog(self.run_dir, self.stage, enabled=self.info.is_main, tensorboard=cfg.tensorboard)
        try:
            with _determinism(cfg.deterministic, self.device):
                if self.device.type == "cpu" and cfg.reuse_cpu_memory:
                    reuse_freed_memory()
                self.objective.to(self.device)
                if self.channels_last:
                    self.objective.to(memory_format=torch.channels_last)
                self.objective.train()
                checkpoint = self._find_resume_checkpoint()
                if checkpoint is not None:
                    self._load_weights(checkpoint)
                if self.step >= cfg.steps:
                    self.log.info(f"stage already finished at step {self.step}; nothing to do.")
                    return self._result(t0)
                compiled = self._compile_networks()
                self.objective.wrap_networks(lambda name, m: distributed.wrap_ddp(m, self.info, cfg.sync_bn))
                self.optimizers = self.objective.make_optimizers(cfg.lr, (cfg.beta1, cfg.beta2))
                self.amp = Amp.for_run(self.device, cfg.amp, cfg.cpu_bf16)
                if checkpoint is not None:
                    self._load_training_state(checkpoint)
                else:
                    _seed_everything(cfg.seed + self.info.rank)
                self._prepare_data()
                self.log.write_config(self.app_config, to_dict(cfg))
                start = self.step
                self.log.info(f"{'resuming at' if start else 'starting at'} step {start} of {cfg.steps} on "
                              f"{self.device} ({self.amp.precision}{', torch.compile' if compiled else ''}, "
                              f"world size {self.info.world_size}, "
                              f"{len(self.dataset)} samples, batch {cfg.batch_size}, {thread_note()})")
                # A network torch.compile cannot handle runs eagerly instead of stopping the run.
                with _dynamo_patch(suppress_errors=True) if compiled else nullcontext():
                    self._loop()
                self.log.info(f"finished at step {self.step}; checkpoint {self.last_saved}")
                distributed.barrier(self.info)
                return self._result(t0, start)
        finally:
            self.objective.wrap_networks(lambda name, m: unwrap(m))
            self.log.close()

    def _compile_networks(self) -> bool:
        """With ``cfg.compile``: wrap each trainable network in ``torch.compile`` (it compiles on its
        first calls); returns whether it did. Where it cannot work it says why in the log and
        training stays eager: on a CPU without a C++ compiler (Inductor builds C++ kernels), or
        under torchrun (not combined with DDP here)."""
        if not self.cfg.compile:
            return False
        if self.device.type == "cpu" and cpp_compiler() is None:
            self.log.warning("torch.compile needs a C++ compiler on a CPU (g++, or the one $CXX names) and none "
                             "was found; training without it.")
            return False
        if self.info.world_size > 1:
            self.log.warning("torch.compile is not combined with torchrun's DDP here; training without it.")
            return False
        self.objective.wrap_networks(lambda name, m: torch.compile(m))
        return True

    def _find_resume_checkpoint(self) -> dict | None:
        if not self.resume:
            return None
        path = find_checkpoint(self.ckpt)
        if path is None:
            self.log.info(f"no checkpoint for stage {self.stage!r} yet; starting it from step 0.")
            return None
        data = load_checkpoint(path, map_location="cpu")
        if data.get("kind") != "checkpoint" or data.get("stage") != self.stage:
            raise UserError(f"{path} is not a training checkpoint of stage {self.stage!r}.")
        self.last_saved, self.last_saved_step = path, data["step"]
        return data

    def _load_weights(self, data: dict) -> None:
        nets = self.objective.networks()
        missing = sorted(set(nets) - set(data["networks"]))
        if missing:
            raise UserError(f"{self.last_saved} has no weights for {', '.join(missing)}; it was written "
                            "by a different kind of training.")
        for name, net in nets.items():
            try:
                net.load_state_dict(data["networks"][name])
            except RuntimeError as exc:
                detail = " ".join(str(exc).split())[:300]
                raise UserError(f"{self.last_saved} does not fit network {name} (was it trained with "
                                f"other settings?): {detail}") from None
        self.step, self.epoch, self.batch_in_epoch = data["step"], data["epoch"], data["batch_in_epoch"]

    def _load_training_state(self, data: dict) -> None:
        for name, opt in self.optimizers.items():
            if name in data["optimizers"]:
                opt.load_state_dict(data["optimizers"][name])
        self.amp.load_state_dict(data.get("scaler"))
        self.objective.load_extra_state(data.get("objective") or {})
        rng = data.get("rng") or []
        if rng:
            _set_rng_state(rng[min(self.info.rank, len(rng) - 1)], self.device)
        old_global = data.get("global_batch")
        new_global = self.cfg.batch_size * self.info.world_size
        if old_global and old_global != new_global:
            # Keep the number of samples seen this epoch; the order within it still matches.
            self.batch_in_epoch = self.batch_in_epoch * old_global // new_global
            self.log.warning(f"resuming with a global batch of {new_global} instead of {old_global}: "
                             "the data order is approximate from here on.")

    def _prepare_data(self) -> None:
        cfg, info = self.cfg, self.info
        self.sampler = EpochSampler(len(self.dataset), shuffle=cfg.shuffle, seed=cfg.seed,
                                    rank=info.rank, world_size=info.world_size)
        per_rank = self.sampler.per_rank
        self.batches_per_epoch = per_rank // cfg.batch_size if cfg.drop_last else -(-per_rank // cfg.batch_size)
        if self.batches_per_epoch == 0:
            raise UserError(f"the training set has {len(self.dataset)} samples, fewer than one batch of "
                            f"{cfg.batch_size} per process; lower the batch size or add data.")
        self.wrapped_dataset = SeededDataset(self.dataset, cfg.seed)
        # Records of this stage past the starting step belong to a run that is being redone.
        self.log.truncate_stats(self.step)

    def _loader(self) -> DataLoader:
        """A DataLoader over the current epoch, starting after the batches already consumed."""
        cfg = self.cfg
        self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * cfg.batch_size)
        # A private generator: creating the loader must not draw from the global RNG, or a resumed
        # run would see a different random stream than one that never stopped.
        generator = torch.Generator().manual_seed(cfg.seed)
        return DataLoader(self.wrapped_dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                          num_workers=cfg.num_workers, drop_last=cfg.drop_last, generator=generator,
                          pin_memory=self.device.type == "cuda")

    # -- the loop ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        cfg = self.cfg
        self.bar = progress(total=cfg.steps, initial=self.step, desc=self.stage, unit="step",
                            quiet=self.quiet or not self.info.is_main)
        self.window: dict[str, list[float]] = {}
        self.t_log, self.step_log = time.perf_counter(), self.step
        in_step = False
        try:
            with _deferred_sigint(self.log) as stop:
                while self.step < cfg.steps:
                    for batch in self._loader():
                        lr = cfg.lr * lr_factor(self.step, cfg.steps, cfg.decay_steps)
                        set_lr(self.optimizers.values(), lr)
                        batch = _to_device(batch, self.device, self.channels_last)
                        in_step = True
                        losses = self.objective.train_step(batch, self.optimizers, self.amp)
                        in_step = False
                        self._after_step(batch, losses, stop)
                        if self.step >= cfg.steps:
                            break
                    else:
                        if self.batch_in_epoch:  # an epoch cut short (e.g. resumed with a larger batch)
                            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        except KeyboardInterrupt:
            self._interrupted(in_step)
        finally:
            self.bar.close()

    def _after_step(self, batch, losses: dict[str, float], stop: threading.Event) -> None:
        """Count the step, then check, log, sample, validate and checkpoint as scheduled."""
        cfg = self.cfg
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= self.batches_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        # Every rank must take the same decision, or the others would wait for it forever.
        bad_any, stop_any = distributed.any_flag([bool(bad), stop.is_set()], self.info)
        if bad_any:
            self._stop_non_finite(bad, losses)
        self.last_losses = losses
        for k, v in losses.items():
            self.window.setdefault(k, []).append(v)
        self.bar.update(1)
        if self.step % cfg.log_every == 0 or self.step == cfg.steps:
            now = time.perf_counter()
            imgs = (self.step - self.step_log) * cfg.batch_size * self.info.world_size
            self._log_stats(self.window, imgs / max(now - self.t_log, 1e-9))
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            self.window, self.t_log, self.step_log = {}, now, self.step
        if cfg.sample_every and self.step % cfg.sample_every == 0:
            self.log.sample(self.step, self.objective.sample_images(batch))
        if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
            self._validate()
            self._save()
        if stop_any:
            raise KeyboardInterrupt

    def _log_stats(self, window: dict[str, list[float]], imgs_per_s: float) -> None:
        lr = self.cfg.lr * lr_factor(self.step - 1, self.cfg.steps, self.cfg.decay_steps)
        means = {k: float(np.mean(v)) for k, v in window.items()}
        self.log.stats({"step": self.step, "epoch": self.epoch, "lr": lr, "imgs_per_s": round(imgs_per_s, 3),
                        "losses": means})
        text = " ".join(f"{k}={v:.4g}" for k, v in means.items())
        self.log.info(f"step {self.step} lr {lr:.3g} {imgs_per_s:.2f} img/s {text}")

    def _validate(self) -> None:
        if self.val_fn is None or not self.info.is_main:
            return
        generator = self.objective.generator()
        devices = [self.device] if self.device.type == "cuda" else []
        # Validation must not consume training randomness: exact resume depends on it.
        with torch.random.fork_rng(devices=devices), kept_mode(generator):
            metrics = {k: float(v) for k, v in dict(self.val_fn(generator)).items()}
        self.last_val = metrics
        self.log.stats({"step": self.step, "val": metrics})
        self.log.info(f"validation at step {self.step}: " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    def _save(self) -> None:
        rng = distributed.gather_objects(_get_rng_state(self.device), self.info)
        if not self.info.is_main:
            self.last_saved, self.last_saved_step = self.ckpt, self.step
            return
        nets = self.objective.networks()
        state = {
            "kind": "checkpoint",
            "stage": self.stage,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_batch": self.cfg.batch_size * self.info.world_size,
            "networks": {name: net.state_dict() for name, net in nets.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scaler": self.amp.state_dict(),
            "objective": self.objective.extra_state(),
            "rng": rng,
            "generator_configs": {name: dict(net.config) for name, net in nets.items()
                                  if isinstance(getattr(net, "config", None), Mapping)},
            "train_config": to_dict(self.cfg),
            "app_config": self.app_config or {},
        }
        self.last_saved = save_rotating(self.ckpt, state)
        self.last_saved_step = self.step
        self.log.info(f"checkpoint at step {self.step}: {self.ckpt}")

    def _stop_non_finite(self, bad: list[str], losses: dict[str, float]) -> None:
        names = ", ".join(f"{k}={losses[k]}" for k in bad) or "on another rank"
        if self.last_saved is not None:
            where = f"the last good checkpoint is {self.last_saved} (step {self.last_saved_step})"
        else:
            where = "no checkpoint had been written yet"
        message = (f"training stopped: non-finite loss at step {self.step} ({names}); {where}. "
                   "Try a lower learning rate or turn mixed precision off.")
        self.log.warning(message)
        raise UserError(message)

    def _interrupted(self, in_step: bool) -> None:
        if not in_step and self.last_saved_step != self.step:
            # Between steps the state is whole: save it so --resume continues from here.
            self._save()
        where = f"{self.last_saved} (step {self.last_saved_step})" if self.last_saved else "none written"
        message = (f"training interrupted at step {self.step}; checkpoint: {where}; run the same command "
                   "with --resume to continue.")
        self.log.warning(message)
        raise TrainingInterrupted(message) from None

    def _result(self, t0: float, start: int | None = None) -> TrainResult:
        return TrainResult(step=self.step, losses=self.last_losses, checkpoint=self.last_saved,
                           run_dir=self.run_dir, stage=self.stage,
                           start_step=self.step if start is None else start,
                           seconds=time.perf_counter() - t0, val=self.last_val,
                           precision=self.amp.precision if self.amp is not None else "")


# -- helpers ----------------------------------------------------------------------------------------
def _to_device(batch, device: torch.device, channels_last: bool):
    """Move tensors of a (nested) batch to ``device``; 4-D float tensors become channels_last."""
    if isinstance(batch, torch.Tensor):
        t = batch.to(device, non_blocking=True)
        if channels_last and t.dim() == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device, channels_last) for v in batch)
    return batch


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _get_rng_state(device: torch.device) -> dict:
    """RNG states as weights_only-loadable data."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextmanager
def _determinism(enabled: bool, device: torch.device):
    """Deterministic kernels inside the block when ``enabled``; cuDNN autotuning otherwise."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_bench, prev_cudnn_det = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    if enabled:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: an op without a deterministic kernel warns instead of aborting the run.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev_bench, prev_cudnn_det


def _dynamo_patch(**settings):
    """``torch._dynamo.config.patch`` (imported only when compiling: dynamo is slow to import)."""
    import torch._dynamo

    return torch._dynamo.config.patch(**settings)


@contextmanager
def _deferred_sigint(log: RunLog):
    """First Ctrl-C: finish the current step, then stop (flag). Second Ctrl-C: stop at once.

    Only the main thread can own signal handlers; elsewhere Ctrl-C stays a plain KeyboardInterrupt.
    """
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print("\nstopping after this step (Ctrl-C again to stop at once)...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
