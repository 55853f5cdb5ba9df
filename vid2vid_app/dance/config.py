"""Configuration of per-subject motion-transfer training (``dance train``) and its presets.

A :class:`DanceConfig` describes everything needed to prepare the data, train the stages and
rebuild the networks; it is saved as ``dance_config.json`` in the run folder and inside the model
file. Presets:

- ``tiny``: a CPU demo. Global stage only, at 128x64 (ngf 16, 3 downsamplings, 3 residual
  blocks), small discriminators (ndf 16, 2 layers, 2 scales), batch 4, lr 1e-3, 1200 steps (about
  0.2 s each on 2 idle CPU cores: 4 minutes; the bundled demo's held-out PSNR rose from 23.2 dB
  after 400 steps to 24.1 dB, LPIPS 0.10 -> 0.06, and the person became recognisable). No VGG loss but an L1 term of weight 20, and feature matching at
  weight 2 instead of 10: in a few hundred steps the early discriminator features are noisy and GAN
  terms alone leave the frame unlearnt. Stick figures are jittered by 2 % of the canvas height while
  training: with ~100 training frames the generator otherwise breaks down (background included) on
  poses it has not seen. On the bundled 100-frame clip this moved held-out PSNR from 21.6-24.0 dB
  (five runs) to 24.8-25.4 dB, against 21.9 dB for the mean training frame.
  ``--stages global,local`` adds a local enhancer at 256x128 (ngf 8, 1 block, 100 steps, ~0.8 s
  each). The images are small and blurry.
- ``standard``: Everybody Dance Now / pix2pixHD: global at 512x256 (ngf 64, 4 downsamplings,
  9 blocks), local enhancer at 1024x512 (ngf 32, 3 blocks), 2-scale discriminators with 3 layers,
  LSGAN, feature matching 10, VGG 10, Adam lr 2e-4 (0.5, 0.999), batch 1; face stage with a
  pix2pixHD global generator (ngf 32, 3 downsamplings, 5 blocks) on 128x128 crops. Needs a GPU.

Sizes are written as landscape ``(width, height)``. Unless a size is given explicitly, the preset's
canvas is turned to portrait when the target video is taller than wide, so a standing person fills
the canvas instead of a thin strip of it. Frames are letterboxed into the canvas (aspect kept,
padded with black), never stretched.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import TrainSettings, replace_given, resolve_cpu_bf16, upgrade_run_settings
from ..errors import UserError

STAGES = ("global", "local", "face")


@dataclass
class DanceConfig:
    """All knobs of ``dance train``. Sizes are (width, height) in pixels."""

    preset: str = "standard"
    # Canvas of the global stage; the local stage runs at twice this. Turned to portrait for
    # portrait targets unless ``size_explicit``.
    size: tuple[int, int] = (512, 256)
    size_explicit: bool = False
    stages: tuple[str, ...] = ("global", "local")

    # Global generator (pix2pixHD "global").
    ngf: int = 64
    n_downsample: int = 4
    n_blocks: int = 9
    # Local enhancer; its width is ngf / 2 so that its global branch (twice as wide) is exactly
    # the trained global generator.
    n_blocks_local: int = 3
    # Face residual generator and its crop.
    ngf_face: int = 32
    n_downsample_face: int = 3
    n_blocks_face: int = 5
    face_size: int = 128  # side of the square face crop fed to the face generator
    face_box_frac: float = 2.0  # face box side = this x the median head width
    norm: str = "instance"

    # Discriminators.
    ndf: int = 64
    n_layers_d: int = 3
    num_d: int = 2
    ndf_face: int = 64

    # Losses.
    gan_mode: str = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_l1: float = 0.0  # L1 reconstruction term (G_L1) of every stage; the tiny preset's stand-in for VGG
    vgg: bool = True
    vgg_backbone: str = "vgg16"
    vgg_weights: str | None = None

    # Optimisation: the length of each stage, then the settings every stage runs with.
    steps: dict[str, int] = field(default_factory=lambda: {"global": 40000, "local": 30000, "face": 10000})
    decay_fraction: float = 0.5
    train: TrainSettings = field(default_factory=lambda: TrainSettings(
        log_every=50, sample_every=1000, checkpoint_every=2000))

    # Stick figures: line width relative to the renderer's default (thicker lines survive the
    # low resolutions of the tiny preset).
    render_thickness: float = 1.0
    # Training-time jitter of the stick figures (fraction of the canvas height; 0: off, as in the
    # paper). Regularises small datasets.
    pose_jitter: float = 0.0

    # The person layer: "person" generates the person as colour + alpha composited over the
    # target's clean background plate, "full" the whole frame (the paper), "auto" the person
    # layer unless the target's camera moves. The field's default is "full" because configs
    # written before the person layer existed lack it; both presets use "auto".
    layer: str = "full"
    lambda_mask: float = 1.0  # alpha vs the person segmentation (a light guide)
    lambda_halo: float = 5.0  # partial alpha far from the person (a halo once the background is swapped)
    halo_margin: float = 0.05  # "far": beyond this x the canvas height from the person mask

    # Data.
    val_fraction: float = 0.1
    val_max_frames: int = 64
    detect_max_side: int = 640
    # Landmarks of the stick figures: "holistic" (body, face-70 and hands; what both presets use)
    # or "body" (33 body points). The field's default is "body" because configs written before
    # holistic figures existed lack it and their models were trained on body-only figures.
    landmarks: str = "body"
    pose_workers: int | None = None  # processes of the pose pass (None: every core)
    smooth_method: str = "one_euro"
    max_gap: int | None = None  # None: a quarter of a second of frames
    min_train_frames: int = 16

    # Recorded for the run: the target videos (resolved paths) the model was trained on.
    videos: tuple[str, ...] = ()

    def stage_steps(self, stage: str) -> int:
        return int(self.steps.get(stage, 0))

    @staticmethod
    def upgrade_dict(data: dict[str, Any]) -> dict[str, Any]:
        """A dance_config.json or model file of an older version: flat run settings (``lr``, ``seed``,
        ``device``, ...) move into ``train``; without ``train.cpu_bf16`` the run was fp32 on a CPU
        and stays so (:func:`~vid2vid_app.config.upgrade_run_settings`)."""
        return upgrade_run_settings(data)


PRESETS: dict[str, dict] = {
    "standard": {"preset": "standard", "landmarks": "holistic", "layer": "auto"},
    "tiny": {
        "preset": "tiny",
        "landmarks": "holistic",
        "layer": "auto",
        "size": (128, 64),
        "stages": ("global",),
        "ngf": 16,
        "n_downsample": 3,
        "n_blocks": 3,
        "n_blocks_local": 1,
        "ngf_face": 8,
        "n_blocks_face": 1,
        "face_size": 32,
        "ndf": 16,
        "n_layers_d": 2,
        "num_d": 2,
        "ndf_face": 16,
        "vgg": False,
        "lambda_l1": 20.0,
        "lambda_feat": 2.0,
        "pose_jitter": 0.02,
        "steps": {"global": 1200, "local": 100, "face": 100},
        "decay_fraction": 0.3,
        "train": {"lr": 1e-3, "batch_size": 4, "amp": False, "log_every": 20, "sample_every": 200,
                  "checkpoint_every": 200},
        "val_max_frames": 32,
        "min_train_frames": 8,
    },
}


def make_config(preset: str = "standard", *, train: dict[str, Any] | None = None, **overrides) -> DanceConfig:
    """The preset's config with ``overrides`` (field name -> value; ``None`` values ignored) and the
    run settings ``train`` (:class:`TrainSettings` field -> value, ``None`` ignored) on top."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    values = dict(PRESETS[preset])
    names = {f.name for f in dataclasses.fields(DanceConfig)} - {"train"}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"DanceConfig has no field {key!r}")
        if value is not None:
            values[key] = value
    settings = replace_given(DanceConfig().train, values.pop("train", None))
    cfg = DanceConfig(**values, train=replace_given(settings, train))
    # The CPU precision is decided here, so --dry-run shows it and the run keeps it on --resume.
    cfg.train.cpu_bf16 = resolve_cpu_bf16(cfg.train.cpu_bf16)
    validate(cfg)
    return cfg


def validate(cfg: DanceConfig) -> None:
    """Raise :class:`UserError` for impossible settings (one sentence each)."""
    if cfg.landmarks not in ("holistic", "body"):
        raise UserError(f"unknown landmarks {cfg.landmarks!r}; choose holistic or body.")
    if cfg.layer not in ("auto", "person", "full"):
        raise UserError(f"unknown layer mode {cfg.layer!r}; choose auto, person or full.")
    for stage in cfg.stages:
        if stage not in STAGES:
            raise UserError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}.")
    if not cfg.stages:
        raise UserError("no stage to train; --stages needs at least one of global, local, face.")
    if ("local" in cfg.stages or "face" in cfg.stages) and "global" not in cfg.stages:
        raise UserError("the local and face stages build on the global stage; include global in --stages.")
    stride = 2 ** cfg.n_downsample
    w, h = cfg.size
    if w <= 0 or h <= 0 or w % stride or h % stride:
        raise UserError(
            f"--size {w}x{h} must be positive multiples of {stride} (2 to the power of the generator's "
            f"{cfg.n_downsample} downsamplings).")
    if "local" in cfg.stages and cfg.ngf % 2:
        raise UserError(f"--ngf {cfg.ngf} must be even with the local stage (the enhancer uses half of it).")
    if "face" in cfg.stages and cfg.face_size % (2 ** cfg.n_downsample_face):
        raise UserError(f"face crop size {cfg.face_size} must be a multiple of {2 ** cfg.n_downsample_face}.")
    if not 0.0 <= cfg.val_fraction < 0.9:
        raise UserError(f"--val-fraction {cfg.val_fraction} must be in [0, 0.9).")
    for stage in cfg.stages:
        if cfg.stage_steps(stage) < 1:
            raise UserError(f"stage {stage} needs at least 1 step (got {cfg.stage_steps(stage)}).")
    if cfg.train.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1 (got {cfg.train.batch_size}).")


def parse_size(text: str) -> tuple[int, int]:
    """"WxH" -> (W, H)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise UserError(f"size {text!r} is not of the form WIDTHxHEIGHT, e.g. 512x256.")
    return int(m.group(1)), int(m.group(2))


def parse_stages(text: str) -> tuple[str, ...]:
    """"global,local,face" -> ("global", "local", "face") in training order."""
    names = [s.strip().lower() for s in (text or "").split(",") if s.strip()]
    for name in names:
        if name not in STAGES:
            raise UserError(f"unknown stage {name!r} in --stages; stages are {', '.join(STAGES)}.")
    return tuple(s for s in STAGES if s in names)


def parse_steps(text: str, base: dict[str, int], stages: tuple[str, ...] | None = None) -> dict[str, int]:
    """"N" (every stage) or "global=N,local=M" (named stages) applied over ``base``. A stage named
    here that the run does not train (not in ``stages``) is an error, not silently ignored."""
    steps = dict(base)
    text = (text or "").strip()
    try:
        if "=" not in text:
            n = int(text)
            return {stage: n for stage in STAGES}
        for part in text.split(","):
            name, value = (p.strip() for p in part.split("=", 1))
            if name not in STAGES:
                raise UserError(f"unknown stage {name!r} in --steps; stages are {', '.join(STAGES)}.")
            if stages is not None and name not in stages:
                raise UserError(f"--steps sets {name}={value.strip()}, but this run trains only "
                                f"{', '.join(stages)}; add it with --stages {','.join((*stages, name))}.")
            steps[name] = int(value)
    except ValueError:
        raise UserError(f"--steps {text!r} must be a number or stage=N pairs, e.g. global=600,local=200.") from None
    return steps


def canvas_size(cfg: DanceConfig, video_size: tuple[int, int]) -> tuple[int, int]:
    """The global stage's canvas (width, height) for a target video of ``video_size``: the configured
    size, turned to portrait for a portrait video unless the size was given explicitly."""
    w, h = cfg.size
    vw, vh = video_size
    if not cfg.size_explicit and (vh > vw) != (h > w) and w != h:
        return h, w
    return w, h


def final_canvas(cfg: DanceConfig, video_size: tuple[int, int]) -> tuple[int, int]:
    """The canvas of the last generator stage: twice the global canvas when ``local`` is trained."""
    w, h = canvas_size(cfg, video_size)
    return (2 * w, 2 * h) if "local" in cfg.stages else (w, h)
