"""``dance train``: prepare a target's data once, then train the stages, then write the model file.

Run folder ``RUNS/NAME/``::

    dance_config.json     the resolved DanceConfig (written first; marks the folder as a dance run)
    data/                 prepared frames and poses (see vid2vid_app.dance.prepare); person masks
                          and background plates (vid2vid_app.dance.layer)
    global/, local/, face/  one training run folder per stage (config.json, log.txt, stats.jsonl,
                          samples/, checkpoints/) managed by vid2vid_app.training
    global/generator.pt   the stage's generator export, written when the stage finishes
    model.pt              the finished model (vid2vid_app.dance.model), written last

Stages, each resumable: (1) ``global``: pix2pixHD global generator on cat(pose, previous frame),
per-frame multiscale discriminator and temporal pair discriminator; (2) ``local``: local enhancer
at twice the resolution whose global branch starts from stage 1; (3) ``face``: residual face
generator and face discriminator around the head, the body generator frozen. A stage is finished
when its ``generator.pt`` exists; ``resume`` skips finished stages and continues the current one
from its latest checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import changed_fields, load_json, save_json, to_dict
from ..device import resolve_device, thread_note
from ..errors import UserError
from ..imaging import to_tensor, to_uint8
from ..models.person_layer import LAYER_CHANNELS, generate_composite
from ..progress import plural
from ..runs import MODEL_FILE, RunState, check_run_folder, open_run, run_folder
from .config import DanceConfig, final_canvas, validate
from .dataset import StagePoses, TemporalPairDataset, downscale_frame, stage_plates
from .layer import LayerData, decide_layer, prepare_layer
from .model import refine_faces, save_dance_model
from .prepare import PreparedData, prepare_dance_data

log = logging.getLogger(__name__)

CONFIG_NAME = "dance_config.json"
STAGE_EXPORT = "generator.pt"
POSE_CHANNELS = 3


@dataclass
class StageResult:
    """What one stage did: ``steps`` trained in total, ``seconds`` spent in this call, the last
    validation metrics (``psnr``, ``ssim`` on held-out frames) and whether it was already done."""

    stage: str
    steps: int
    seconds: float
    val: dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    precision: str = ""  # e.g. "bf16 autocast" or "fp32" ("" when the stage was already finished)


@dataclass
class DanceTrainSummary:
    name: str
    run_dir: Path
    model_path: Path
    stages: list[StageResult]
    seconds: float
    frames: int
    frames_with_person: int
    train_pairs: int
    val_frames: int
    resolution: tuple[int, int]
    notes: list[str]
    generation: str = "full frame"  # or the person layer

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [f"model {self.name}: {self.model_path}",
               f"data: {plural(self.frames, 'frame')} ({self.frames_with_person} with a person), "
               f"{plural(self.train_pairs, 'training pair')}, {plural(self.val_frames, 'held-out frame')}",
               f"resolution {self.resolution[0]}x{self.resolution[1]}, {self.generation}, total time {self.seconds:.1f} s on {thread_note()}"]
        for r in self.stages:
            val = ", ".join(f"{k} {v:.2f}" for k, v in r.val.items()) if r.val else "no validation"
            state = " (already finished)" if r.skipped else ""
            precision = f", {r.precision}" if r.precision else ""
            out.append(f"  {r.stage}: {plural(r.steps, 'step')}, {r.seconds:.1f} s{precision}, {val}{state}")
        out += [f"note: {n}" for n in self.notes]
        return out


# ---------------------------------------------------------------------------------------------
# Run folder policy
# ---------------------------------------------------------------------------------------------

def resolve_config(run_dir: Path, cfg: DanceConfig, continuing: bool, videos: list[Path],
                   notes: list[str] | None = None) -> DanceConfig:
    """On resume the saved config rules (except the runtime knobs train.device/num_workers/compile), so that the
    run continues exactly as it started; settings that differ are named in ``notes``. The target
    videos must be the same ones."""
    if not continuing:
        return cfg
    saved = load_json(DanceConfig, run_dir / CONFIG_NAME)
    runtime = {"train.device", "train.num_workers", "train.compile", "videos"}
    differing = [name for name in changed_fields(saved, cfg) if name not in runtime]
    if differing and notes is not None:
        notes.append(f"resuming with the run's saved settings; these given or default settings differ and are "
                     f"not used: {', '.join(differing)} (use --overwrite to start again with them)")
        log.warning(notes[-1])  # now, not only in the summary after training
    given = [str(v.resolve()) for v in videos]
    if saved.videos and list(saved.videos) != given:
        raise UserError(f"run {run_dir} was trained on {', '.join(saved.videos)}; resume it with the "
                        "same target videos (or use --overwrite to start again).")
    saved.train.device, saved.train.num_workers = cfg.train.device, cfg.train.num_workers
    saved.train.compile = cfg.train.compile  # a speed knob: it may change rounding, not the run's settings
    return saved


# ---------------------------------------------------------------------------------------------
# Networks per stage
# ---------------------------------------------------------------------------------------------

def build_global(cfg: DanceConfig, out_channels: int = 3):
    """The global generator; ``out_channels`` 4 for a person layer (colour + alpha)."""
    from ..models import build_generator

    return build_generator("global", in_channels=POSE_CHANNELS + 3, out_channels=out_channels, ngf=cfg.ngf,
                           n_downsample=cfg.n_downsample, n_blocks=cfg.n_blocks, norm=cfg.norm)


def build_local(cfg: DanceConfig, global_generator=None, out_channels: int = 3):
    from ..models import build_generator, load_global_into_local

    local = build_generator("local", in_channels=POSE_CHANNELS + 3, out_channels=out_channels, ngf=cfg.ngf // 2,
                            n_downsample=cfg.n_downsample, n_blocks=cfg.n_blocks, n_local_enhancers=1,
                            n_blocks_local=cfg.n_blocks_local, norm=cfg.norm)
    if global_generator is not None:
        load_global_into_local(local, global_generator)
    return local


def build_face(cfg: DanceConfig):
    from ..models import build_generator

    return build_generator("face", in_channels=POSE_CHANNELS + 3, out_channels=3, ngf=cfg.ngf_face,
                           n_downsample=cfg.n_downsample_face, n_blocks=cfg.n_blocks_face, norm=cfg.norm)


def build_discriminators(cfg: DanceConfig):
    """(per-frame multiscale D on cat(pose, frame), temporal D on cat(pose t, pose t+1, frame t, t+1))."""
    from ..models import build_discriminator

    d = build_discriminator("multiscale", in_channels=POSE_CHANNELS + 3, ndf=cfg.ndf, n_layers=cfg.n_layers_d,
                            norm=cfg.norm, num_d=cfg.num_d)
    dt = build_discriminator("temporal", in_channels=2 * (POSE_CHANNELS + 3), ndf=cfg.ndf,
                             n_layers=cfg.n_layers_d, norm=cfg.norm, num_d=cfg.num_d)
    return d, dt


def make_vgg(cfg: DanceConfig, explicit: bool, notes: list[str]):
    """The VGG loss, or None. A preset's VGG without weights falls back to no VGG (noted); an
    explicitly given weight file that is missing is an error."""
    if not cfg.vgg or cfg.lambda_vgg <= 0:
        return None
    from ..models.losses import VGGLoss, find_vgg_weights

    path = find_vgg_weights(cfg.vgg_backbone, cfg.vgg_weights)
    if path is None:
        if explicit:
            raise UserError(f"VGG weight file {cfg.vgg_weights} does not exist; pass the path of a "
                            f"{cfg.vgg_backbone} ImageNet state dict (e.g. vgg16_features_imagenet.pth).")
        message = (f"no {cfg.vgg_backbone} ImageNet weights found (--vgg-weights, $VID2VID_VGG_WEIGHTS, "
                   "$VID2VID_WEIGHTS_DIR); training without the VGG loss")
        log.warning(message)
        notes.append(message)
        return None
    return VGGLoss(path, backbone=cfg.vgg_backbone)


# ---------------------------------------------------------------------------------------------
# Validation: generate the held-out frames in order, feeding back the previous output
# ---------------------------------------------------------------------------------------------

class HeldOut:
    """Held-out frames at one stage's resolution: real uint8 frames, pose tensors, face boxes and,
    for a person layer (``plates`` (V, 3, H, W) at the stage, one per video), each frame's plate."""

    def __init__(self, data: PreparedData, indices: np.ndarray, style, factor: int, max_frames: int,
                 face_side: int | None = None, plates: torch.Tensor | None = None):
        self.indices = np.asarray(indices[:max_frames], dtype=np.int64)
        self.plates = ([plates[int(data.segment[t])][None] for t in self.indices] if plates is not None
                       else [None] * len(self.indices))
        poses = StagePoses(data, factor, style)
        frames = data.frames
        self.real = [downscale_frame(frames[t], factor) for t in self.indices]
        self.poses = [to_tensor(poses.render(int(t))) for t in self.indices]
        self.boxes = ([poses.face_box(int(t), face_side) for t in self.indices] if face_side
                      else [None] * len(self.indices))
        # A new sequence starts (previous output reset to zeros) after a gap in the indices.
        self.starts = np.ones(len(self.indices), dtype=bool)
        self.starts[1:] = np.diff(self.indices) != 1

    def __len__(self) -> int:
        return len(self.indices)

    @torch.no_grad()
    def generate(self, generator, face_generator=None, face_size: int = 0) -> list[np.ndarray]:
        from ..training.modules import eval_mode

        device = next(generator.parameters()).device
        out, prev = [], None
        with eval_mode(generator):
            for pose, start, box, plate in zip(self.poses, self.starts, self.boxes, self.plates, strict=True):
                pose = pose.to(device)
                if start or prev is None:
                    prev = torch.zeros_like(pose)
                if plate is None:
                    fake = generator(torch.cat([pose, prev], dim=1))  # (1, 6, H, W) in -> (1, 3, H, W)
                else:  # the person layer's (1, 4, H, W) composited over the plate -> (1, 3, H, W)
                    fake, _ = generate_composite(generator, torch.cat([pose, prev], dim=1), plate.to(device))
                if face_generator is not None and box is not None:
                    boxes = torch.as_tensor(box[None], device=device)
                    fake = refine_faces(face_generator, fake, pose, boxes, face_size)
                prev = fake
                out.append(to_uint8(fake[0]))
        return out

    def metrics(self, generator, face_generator=None, face_size: int = 0) -> dict[str, float]:
        from ..metrics import psnr, ssim

        if not len(self):
            return {}
        fakes = self.generate(generator, face_generator, face_size)
        return {"val_psnr": psnr(fakes, self.real), "val_ssim": ssim(fakes, self.real)}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def train_dance(videos: list[str | Path], name: str, cfg: DanceConfig, *, runs_dir: str | Path | None = None,
                resume: bool = False, overwrite: bool = False, quiet: bool = False,
                vgg_explicit: bool = False) -> DanceTrainSummary:
    """Prepare the data of the target ``videos`` and train the configured stages into
    ``RUNS/NAME``; returns a summary. Raises :class:`UserError` for bad input (see the module doc).

    Under torchrun every rank runs this: rank 0 alone reads and writes the run folder, prepares the
    data and writes the exports, while the others wait for it (:mod:`vid2vid_app.training.distributed`)
    and then read the prepared data; every rank trains.
    """
    from ..training import distributed

    t_start = time.perf_counter()
    run_dir = run_folder(name, runs_dir)
    videos = check_videos(videos)
    dist_info = distributed.setup(cfg.train.device)
    quiet = quiet or not dist_info.is_main
    check_run_folder(run_dir, "dance", resume=resume, overwrite=overwrite)  # fail before any work
    notes: list[str] = []
    # Rank 0 reads a resumed run's saved settings before it writes anything; every rank uses them.
    cfg = distributed.run_on_main(
        lambda: resolve_config(run_dir, cfg, resume and (run_dir / CONFIG_NAME).is_file(), videos, notes), dist_info)
    cfg.videos = tuple(str(v.resolve()) for v in videos)
    validate(cfg)
    vgg = make_vgg(cfg, vgg_explicit, notes)  # before any work: a missing weight file fails fast

    with contextlib.ExitStack() as run_lock:
        return _train_in_run(videos, name, cfg, run_dir, run_lock, dist_info, resume=resume, overwrite=overwrite,
                             quiet=quiet, notes=notes, vgg=vgg, t_start=t_start)


def check_videos(videos: list[str | Path]) -> list[Path]:
    """Target videos that exist, decode and are distinct; UserError otherwise, before anything is written."""
    from ..video import probe

    paths = [Path(v) for v in videos]
    if not paths:
        raise UserError("give at least one target video.")
    seen: dict[Path, Path] = {}
    for v in paths:
        probe(v)  # clear errors for missing or unreadable files
        if v.resolve() in seen:
            raise UserError(f"{v} is given twice (as {seen[v.resolve()]} too); each target video once, or the "
                            "held-out frames would repeat training frames.")
        seen[v.resolve()] = v
    return paths


def _train_in_run(videos: list[Path], name: str, cfg: DanceConfig, run_dir: Path, run_lock: contextlib.ExitStack,
                  dist_info, *, resume: bool, overwrite: bool, quiet: bool, notes: list[str], vgg,
                  t_start: float) -> DanceTrainSummary:
    """The body of :func:`train_dance` once the settings are checked: the run folder is opened (and
    locked) on rank 0 for as long as ``run_lock`` is held."""
    from ..pose.render import RenderStyle
    from ..training import distributed
    from ..video import probe

    # 1. The run folder, opened (new, resumed or replacing an old run) and locked by rank 0.
    state: list[RunState] = []

    def open_run_folder() -> tuple[bool, bool, list[str]]:
        state.append(run_lock.enter_context(open_run(run_dir, "dance", resume=resume, overwrite=overwrite)))
        if not state[0].continuing:
            save_json(cfg, run_dir / CONFIG_NAME)  # the marker of a dance run, written first
        return state[0].continuing, state[0].created, state[0].notes

    continuing, _created, open_notes = distributed.run_on_main(open_run_folder, dist_info)
    notes.extend(open_notes)

    # 2. Data (cached in RUNS/NAME/data: rank 0 decodes and detects, the other ranks read its cache).
    info = probe(videos[0])
    target_size = (info.width, info.height)
    canvas = final_canvas(cfg, target_size)

    def prepare() -> tuple[PreparedData, np.ndarray, np.ndarray, LayerData | None]:
        # Unusable target videos raise here; open_run then removes the folder it created.
        data = prepare_dance_data(videos, run_dir / "data", canvas, detect_max_side=cfg.detect_max_side,
                                  smooth_method=cfg.smooth_method, max_gap=cfg.max_gap,
                                  min_frames=cfg.min_train_frames, landmarks=cfg.landmarks,
                                  workers=cfg.pose_workers, quiet=quiet)
        pairs, val_idx = data.split(cfg.val_fraction)
        if len(pairs) < max(1, cfg.min_train_frames // 2):
            raise UserError(f"only {len(pairs)} consecutive frame pairs with a person remain for training "
                            f"in {', '.join(map(str, videos))} (after holding out {cfg.val_fraction:.0%}); "
                            "give a longer target video.")
        # Person masks and background plates (once, cached beside the frames) unless --full-frame.
        layer = prepare_layer(data, quiet=quiet) if cfg.layer != "full" else None
        return data, pairs, val_idx, layer

    data, pairs, val_idx, layer = distributed.main_process_first(prepare, dist_info)
    use_layer, layer_note = decide_layer(cfg.layer, layer)
    notes.extend([layer_note] if layer_note else [])
    notes.extend(layer.hole_notes if use_layer else [])
    layer = layer if use_layer else None
    if state:
        state[0].commit()  # the new run's data is good: a run it replaces can go now
    if cfg.preset == "standard" and resolve_device(cfg.train.device).type == "cpu":
        notes.append("the standard preset on a CPU takes days; --preset tiny is meant for CPUs")
        log.warning(notes[-1])
    style = RenderStyle(thickness_scale=cfg.render_thickness)

    # 3. Stages.
    results: list[StageResult] = []
    body = None
    face = None
    face_side = stage_face_side(data, cfg) if "face" in cfg.stages else None
    for stage in cfg.stages:
        result, net = train_stage(stage, cfg, data, pairs, val_idx, style, run_dir, vgg=vgg, body=body,
                                  face_side=face_side, resume=continuing, quiet=quiet, layer=layer)
        results.append(result)
        if stage == "face":
            face = net
        else:
            body = net

    # 4. The model file.
    model_path = distributed.run_on_main(lambda: _write_model(
        run_dir / MODEL_FILE, cfg, data, layer, body, face, style, canvas, target_size, val_idx, face_side), dist_info)
    resolution, n_train, n_val = canvas, len(pairs), len(val_idx)
    return DanceTrainSummary(
        name=name, run_dir=run_dir, model_path=model_path, stages=results,
        seconds=time.perf_counter() - t_start, frames=len(data), frames_with_person=int(data.valid.sum()),
        train_pairs=n_train, val_frames=n_val, resolution=resolution, notes=notes,
        generation="person layer over the background plate" + ("s" if len(data.videos) > 1 else "")
        if layer else "full frame")


def _write_model(path: Path, cfg: DanceConfig, data: PreparedData, layer: LayerData | None, body, face, style,
                 canvas: tuple[int, int], target_size: tuple[int, int], val_idx: np.ndarray,
                 face_side: int | None) -> Path:
    """The finished model file: generators, the target's statistics, renderer settings, the
    prepared data's layout (for `dance evaluate`) and the background plates of a person layer."""
    return save_dance_model(
        path, generator=body, face_generator=face, config=cfg, target_stats=data.stats,
        render_style=style, target_size=target_size, resolution=canvas, letterbox=data.letterbox,
        stage="local" if "local" in cfg.stages else "global",
        data={"dir": "data", "frames_file": data.frames_path.name, "frames": len(data),
              "canvas": list(canvas), "val_start": int(len(data) - round(len(data) * cfg.val_fraction)),
              "val_frames": [int(i) for i in val_idx], "fps": data.fps,
              "face_side": face_side, "masks_file": layer.masks_path.name if layer else None},
        plates=layer.plates if layer else None)


def stage_face_side(data: PreparedData, cfg: DanceConfig) -> int | None:
    """One face-box side (pixels at the final canvas) for the whole target, from the median head."""
    from ..models.face import face_side

    return face_side(data.canvas_keypoints[data.valid], box_frac=cfg.face_box_frac)


def train_config(cfg: DanceConfig, stage: str):
    from ..training import TrainConfig

    steps = cfg.stage_steps(stage)
    return TrainConfig.for_stage(cfg.train, steps, int(round(steps * cfg.decay_fraction)))


def train_stage(stage: str, cfg: DanceConfig, data: PreparedData, pairs: np.ndarray, val_idx: np.ndarray,
                style, run_dir: Path, *, vgg, body, face_side: int | None, resume: bool,
                quiet: bool, layer: LayerData | None = None) -> tuple[StageResult, torch.nn.Module]:
    """Train one stage (or load it when already finished); returns its result and its generator
    (the body generator for global/local, the face generator for face), on the CPU, eval mode.
    With ``layer`` the body generators are person layers (colour + alpha over the plates)."""
    from ..training import distributed, export_generator, load_generator_export, train
    from ..training.objectives import FaceObjective, TemporalObjective

    stage_dir = run_dir / stage
    export_path = stage_dir / STAGE_EXPORT
    if export_path.is_file():
        generator, meta = load_generator_export(export_path)
        return StageResult(stage, int(meta.get("steps", 0)), 0.0, dict(meta.get("val", {})), skipped=True), generator

    factor = 2 if (stage == "global" and "local" in cfg.stages) else 1
    heldout = HeldOut(data, val_idx, style, factor, cfg.val_max_frames,
                      face_side=face_side if stage == "face" else None,
                      plates=stage_plates(layer, factor) if layer is not None else None)
    face_pairs = pairs
    body_channels = LAYER_CHANNELS if layer is not None else 3
    torch.manual_seed(cfg.train.seed)  # weight initialisation follows --seed, so runs are reproducible
    if stage == "global":
        G = build_global(cfg, body_channels)
        D, Dt = build_discriminators(cfg)
        objective = TemporalObjective(G, D, Dt, **loss_kwargs(cfg, vgg), **layer_kwargs(cfg, layer))
        val_fn = (lambda _=None: heldout.metrics(objective.generator())) if len(heldout) else None
    elif stage == "local":
        G = build_local(cfg, body, body_channels)
        D, Dt = build_discriminators(cfg)
        objective = TemporalObjective(G, D, Dt, **loss_kwargs(cfg, vgg), **layer_kwargs(cfg, layer))
        val_fn = (lambda _=None: heldout.metrics(objective.generator())) if len(heldout) else None
    else:
        from ..models import build_discriminator

        face_G = build_face(cfg)
        face_D = build_discriminator("face", in_channels=POSE_CHANNELS + 3, ndf=cfg.ndf_face,
                                     n_layers=cfg.n_layers_d, norm=cfg.norm, num_d=cfg.num_d)
        objective = FaceObjective(body, face_G, face_D, crop_size=cfg.face_size,
                                  **loss_kwargs(cfg, vgg))
        body_for_val = body

        def val_fn(_=None):
            fg = objective.generator()
            return heldout.metrics(body_for_val.to(next(fg.parameters()).device), fg, cfg.face_size)

        poses = StagePoses(data, 1, style)
        ok = np.array([poses.face_box(int(t), face_side) is not None and poses.face_box(int(t) + 1, face_side)
                       is not None for t in pairs], dtype=bool)
        face_pairs = pairs[ok]
        if len(face_pairs) == 0:
            raise UserError("the face stage needs frames where the face is visible; none were found.")
        if not len(heldout):
            val_fn = None
    dataset = TemporalPairDataset(data, face_pairs if stage == "face" else pairs, style, factor=factor,
                                  face_boxes=stage == "face", face_side=face_side,
                                  pose_jitter=cfg.pose_jitter if stage != "face" else 0.0, layer=layer)
    t0 = time.perf_counter()
    result = train(objective, dataset, train_config(cfg, stage), stage_dir, resume=resume, quiet=quiet,
                   app_config={"dance": to_dict(cfg), "stage": stage}, val_fn=val_fn, stage=stage)
    seconds = time.perf_counter() - t0
    generator = objective.generator()
    steps = int(result.step)

    def export() -> dict[str, float]:
        # The loop validates at its last checkpoint; a stage found finished on resume did not.
        val = dict(result.val) if result.val else (val_fn(generator) if val_fn else {})
        val = {k: float(v) for k, v in val.items()}
        export_generator(export_path, generator, {"stage": stage, "steps": steps, "val": val})
        return val

    val = distributed.run_on_main(export, distributed.setup(cfg.train.device))  # rank 0 writes, every rank gets val
    generator = generator.cpu().eval()
    return StageResult(stage, steps, seconds, val, precision=result.precision), generator


def layer_kwargs(cfg: DanceConfig, layer: LayerData | None) -> dict[str, Any]:
    """The temporal objective's matte terms: on for a person layer, off for full frames."""
    if layer is None:
        return {}
    return {"lambda_mask": cfg.lambda_mask, "lambda_halo": cfg.lambda_halo, "halo_margin": cfg.halo_margin}


def loss_kwargs(cfg: DanceConfig, vgg) -> dict[str, Any]:
    """Loss arguments shared by the temporal and face objectives. The L1 term (logged as ``G_L1``)
    lets the tiny CPU preset, which has no VGG, learn the frame's layout in a few hundred steps; the
    standard preset uses VGG alone (``G_VGG``), as the paper."""
    return {"gan_mode": cfg.gan_mode, "lambda_feat": cfg.lambda_feat,
            "lambda_vgg": cfg.lambda_vgg if vgg is not None else 0.0, "vgg": vgg,
            "lambda_l1": cfg.lambda_l1, "n_layers_d": cfg.n_layers_d, "num_d": cfg.num_d}

