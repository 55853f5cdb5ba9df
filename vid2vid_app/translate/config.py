"""Configuration of frame-wise translation training: data sources, networks, losses, schedule, presets.

Two presets per mode:

* ``standard`` -- the papers' settings. pix2pix: unet_256 (ngf 64, batch norm, dropout), PatchGAN
  (n_layers 3), vanilla GAN + 100 x L1, images resized to 286 and randomly cropped to 256, flipped,
  batch 1, Adam 2e-4 (0.5, 0.999), 100 epochs at constant LR then 100 of linear decay.
  CycleGAN: resnet_9blocks (instance norm), PatchGAN on single images, LSGAN, cycle 10, identity 0.5,
  a 50-image history pool, same preprocessing and schedule.
  ToDayGAN: CycleGAN's generators, pool, preprocessing and schedule; per domain three PatchGANs (on
  the blurred colour image, the greyscale image and its gradients), relativistic LSGAN, smooth-L1
  cycle 10, no identity loss. Its tiny preset is CycleGAN's with these changes.
* ``tiny`` -- small networks on 64x64 crops and a few hundred steps, so a run finishes in minutes on
  a laptop CPU. It proves the pipeline end to end; it is not a quality setting.

Everything a preset sets can be overridden field by field (:func:`make_config`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..config import TrainSettings, replace_given, resolve_cpu_bf16, upgrade_run_settings
from ..errors import UserError

MODES = ("pix2pix", "cyclegan", "todaygan")
DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS = ("resize_and_crop", "scale_width_and_crop", "crop")
GAN_MODES = ("vanilla", "lsgan", "hinge", "rlsgan")  # rlsgan: relativistic LSGAN (todaygan)


@dataclass
class DataSpec:
    """Where the training images come from (exactly one kind per mode).

    pix2pix: ``paired`` (two folders with the same file names), ``aligned`` (one folder of A|B
    side-by-side images) or ``paired_video`` (two frame-aligned videos). CycleGAN: ``domain_a`` and
    ``domain_b``, each a list of image folders and/or videos. Videos are sampled every
    ``frame_step``-th frame, at most ``max_frames`` frames per video.
    """

    paired: tuple[str, ...] = ()
    aligned: str | None = None
    paired_video: tuple[str, ...] = ()
    domain_a: tuple[str, ...] = ()
    domain_b: tuple[str, ...] = ()
    frame_step: int = 1
    max_frames: int | None = None

    def kind(self) -> str | None:
        """"paired", "aligned", "paired_video", "unpaired" or None when nothing was given."""
        given = [name for name, value in (("paired", self.paired), ("aligned", self.aligned),
                                          ("paired_video", self.paired_video)) if value]
        if self.domain_a or self.domain_b:
            given.append("unpaired")
        if len(given) > 1:
            raise UserError(f"give one kind of training data, not several ({', '.join(given)}).")
        return given[0] if given else None


@dataclass
class TranslateConfig:
    """Everything needed to rebuild a translation run; saved as JSON in the run folder and inside
    model.pt. Sizes are in pixels; ``steps`` counts optimizer iterations (one batch each)."""

    mode: str = "pix2pix"
    preset: str = "standard"
    direction: str = "AtoB"
    data: DataSpec = field(default_factory=DataSpec)
    # Preprocessing (applied identically to both images of a pair).
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    val_fraction: float = 0.1  # pix2pix: the last pairs (by name / frame order) are held out
    max_val: int = 50
    # Generator.
    arch: str = "unet_256"
    ngf: int = 64
    norm: str = "batch"
    dropout: bool = True
    n_downs: int | None = None  # U-Net depth override (stride 2**n_downs)
    n_blocks: int | None = None  # ResNet residual blocks override
    # Discriminator (PatchGAN).
    ndf: int = 64
    n_layers_d: int = 3
    norm_d: str = "batch"
    # Objective.
    gan_mode: str = "vanilla"
    lambda_l1: float = 100.0
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    # Schedule: epochs -> steps unless steps are given explicitly.
    epochs: int = 100
    epochs_decay: int = 100
    steps: int | None = None
    decay_steps: int | None = None
    # Run: optimizer, batch size, seed, device, precision, logging.
    train: TrainSettings = field(default_factory=TrainSettings)

    @staticmethod
    def upgrade_dict(data: dict[str, Any]) -> dict[str, Any]:
        """A translate.json or model file of an older version: flat run settings (``lr``, ``seed``,
        ``device``, ...) move into ``train``; without ``train.cpu_bf16`` the run was fp32 on a CPU
        and stays so (:func:`~vid2vid_app.config.upgrade_run_settings`)."""
        return upgrade_run_settings(data)

    def total_steps(self, n_items: int) -> tuple[int, int]:
        """(steps, decay_steps) for a dataset of ``n_items`` training items: explicit values win,
        else (epochs + epochs_decay) epochs of ceil(n_items / batch_size) iterations each."""
        per_epoch = max(1, math.ceil(n_items / self.train.batch_size))
        steps = self.steps if self.steps is not None else (self.epochs + self.epochs_decay) * per_epoch
        if self.decay_steps is not None:
            decay = self.decay_steps
        elif self.steps is not None:
            # Explicit steps without explicit decay: keep the paper's proportion of decay epochs.
            decay = round(steps * self.epochs_decay / max(1, self.epochs + self.epochs_decay))
        else:
            decay = self.epochs_decay * per_epoch
        return steps, min(decay, steps)


_STANDARD = {
    "pix2pix": dict(arch="unet_256", ngf=64, norm="batch", dropout=True, ndf=64, norm_d="batch",
                    gan_mode="vanilla", load_size=286, crop_size=256, epochs=100, epochs_decay=100),
    "cyclegan": dict(arch="resnet_9blocks", ngf=64, norm="instance", dropout=False, ndf=64,
                     norm_d="instance", gan_mode="lsgan", load_size=286, crop_size=256, epochs=100,
                     epochs_decay=100),
}
_TINY = {
    # 64x64 crops from 72x72; a 6-level U-Net (stride 64) at ngf 16 trains at tens of steps/s on CPU.
    "pix2pix": dict(arch="unet_256", n_downs=6, ngf=16, norm="batch", dropout=True, ndf=16,
                    norm_d="batch", gan_mode="vanilla", load_size=72, crop_size=64, steps=300,
                    decay_steps=100,
                    train=dict(batch_size=4, sample_every=100, checkpoint_every=150, log_every=10)),
    # CycleGAN costs four networks per step: ResNet with 3 blocks at ngf 8. Such small networks
    # learn the cycle noticeably faster with a larger step than the paper's 2e-4.
    "cyclegan": dict(arch="resnet_6blocks", n_blocks=3, ngf=8, norm="instance", dropout=False, ndf=8,
                     norm_d="instance", gan_mode="lsgan", load_size=72, crop_size=64, steps=200,
                     decay_steps=60, pool_size=50,
                     train=dict(lr=5e-4, batch_size=2, sample_every=100, checkpoint_every=100, log_every=10)),
}
# ToDayGAN: CycleGAN's generators, preprocessing, schedule and pool with three-view discriminators,
# the relativistic LSGAN loss and no identity loss (the method's defaults).
for _by_mode in (_STANDARD, _TINY):
    _by_mode["todaygan"] = {**_by_mode["cyclegan"], "gan_mode": "rlsgan", "lambda_identity": 0.0}
PRESETS = {"tiny": _TINY, "standard": _STANDARD}


def make_config(mode: str, preset: str = "standard", *, train: dict[str, Any] | None = None,
                **overrides) -> TranslateConfig:
    """The ``preset`` settings for ``mode`` with ``overrides`` (None values are ignored) and the run
    settings ``train`` (:class:`TrainSettings` field -> value, None ignored) on top."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}.")
    values = dict(PRESETS[preset][mode], mode=mode, preset=preset)
    known = {f.name for f in dataclasses.fields(TranslateConfig)} - {"train"}
    for key, value in overrides.items():
        if key not in known:
            raise TypeError(f"unknown TranslateConfig field {key!r}")
        if value is not None:
            values[key] = value
    if overrides.get("arch") is not None and overrides["arch"] != PRESETS[preset][mode].get("arch"):
        # Another architecture: its own depth / block count unless those are given too.
        for key in ("n_downs", "n_blocks"):
            if overrides.get(key) is None:
                values[key] = None
    if overrides.get("steps") is None and (overrides.get("epochs") is not None
                                           or overrides.get("epochs_decay") is not None):
        # Epochs asked for: they replace a preset's fixed step count (the tiny preset has one).
        values["steps"] = values["decay_steps"] = None
    if overrides.get("steps") is not None and overrides.get("decay_steps") is None:
        # New total steps without a decay length: decay over the papers' share (half) of the run,
        # not over the preset's absolute count.
        values["decay_steps"] = None
    settings = replace_given(TranslateConfig().train, values.pop("train", None))
    cfg = TranslateConfig(**values, train=replace_given(settings, train))
    # The CPU precision is decided here, so --dry-run shows it and the run keeps it on --resume.
    cfg.train.cpu_bf16 = resolve_cpu_bf16(cfg.train.cpu_bf16)
    validate(cfg)
    return cfg


def validate(cfg: TranslateConfig) -> None:
    """Raise UserError for settings that cannot work together."""
    if cfg.mode not in MODES:
        raise UserError(f"unknown mode {cfg.mode!r}; use one of {', '.join(MODES)}.")
    if cfg.direction not in DIRECTIONS:
        raise UserError(f"unknown direction {cfg.direction!r}; use AtoB or BtoA.")
    if cfg.preprocess not in PREPROCESS:
        raise UserError(f"unknown preprocessing {cfg.preprocess!r}; use one of {', '.join(PREPROCESS)}.")
    if cfg.gan_mode not in GAN_MODES:
        raise UserError(f"unknown GAN loss {cfg.gan_mode!r}; use one of {', '.join(GAN_MODES)}.")
    if cfg.gan_mode == "rlsgan" and cfg.mode != "todaygan":
        raise UserError("the relativistic GAN loss rlsgan is implemented for --mode todaygan only.")
    if cfg.crop_size < 16:
        raise UserError(f"crop size {cfg.crop_size} is too small; use at least 16 pixels.")
    if cfg.preprocess != "crop" and cfg.load_size < cfg.crop_size:
        raise UserError(f"load size {cfg.load_size} is smaller than the crop size {cfg.crop_size}.")
    if cfg.train.batch_size < 1 or (cfg.steps is not None and cfg.steps < 1):
        raise UserError("batch size and steps must be at least 1.")
    if not 0 <= cfg.val_fraction < 1:
        raise UserError(f"validation fraction {cfg.val_fraction} must be in [0, 1).")
    if cfg.data.frame_step < 1:
        raise UserError(f"frame step {cfg.data.frame_step} must be at least 1.")
