"""`dance train TARGET.mp4 [MORE.mp4 ...] --name NAME`: learn one target person's appearance."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import LANDMARK_SETS, to_dict
from ..dance.config import PRESETS, final_canvas, make_config, parse_size, parse_stages, parse_steps
from ..errors import UserError
from .common import (
    device_option,
    overwrite_option,
    quiet_option,
    runs_dir_option,
    threads_option,
    train_run_options,
    train_settings,
    user_errors,
    workers_option,
)


def _default_steps() -> str:
    """Each preset's steps per stage, for --help (e.g. "tiny: global=1200, local=100, face=100")."""
    steps = {preset: make_config(preset).steps for preset in PRESETS}
    return "; ".join(f"{preset}: " + ", ".join(f"{s}={n}" for s, n in by_stage.items())
                     for preset, by_stage in steps.items())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Model name: the run folder RUNS/NAME and `--model NAME` later.")
@runs_dir_option
@click.option("--preset", type=click.Choice(list(PRESETS)), default="standard", show_default=True,
              help="tiny: CPU demo (minutes, blurry); standard: Everybody Dance Now (GPU).")
@click.option("--stages", default=None, help="Stages to train, e.g. global,local,face [default: the preset's].")
@click.option("--face", is_flag=True, help="Also train the face stage (same as adding face to --stages).")
@click.option("--steps", default=None, help="Steps per stage: N for every stage, or global=N,local=M,face=K "
              f"[default: {_default_steps()}].")
@click.option("--size", default=None, help="Global-stage canvas WxH; the local stage runs at twice this "
              "[default: the preset's, turned to portrait for portrait videos].")
@click.option("--ngf", type=click.IntRange(min=2), default=None, help="Generator width (the local enhancer uses half).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Pairs of frames per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Adam learning rate.")
@device_option
@click.option("--num-workers", type=click.IntRange(min=0), default=None, help="DataLoader worker processes.")
@click.option("--landmarks", type=click.Choice(LANDMARK_SETS), default=None,
              help="Stick figures from holistic landmarks (body, face and hands) or the body's only; the model "
                   "keeps this setting [default: holistic].")
@workers_option
@click.option("--person-layer/--full-frame", "person_layer", default=None,
              help="Generate only the person (colour and an alpha matte) over the target's clean background plate, "
                   "or whole frames as Everybody Dance Now [default: the person layer unless the camera moves].")
@click.option("--vgg-weights", type=click.Path(path_type=Path), default=None,
              help="ImageNet weight file of --vgg-backbone for the perceptual loss [default: $VID2VID_VGG_WEIGHTS, "
              "$VID2VID_WEIGHTS_DIR, the torch hub cache].")
@click.option("--vgg-backbone", type=click.Choice(["vgg16", "vgg19"]), default=None,
              help="Perceptual-loss network [default: vgg16; pix2pixHD used vgg19].")
@click.option("--no-vgg", is_flag=True, help="Train without the VGG perceptual loss.")
@click.option("--seed", type=int, default=None, help="Random seed.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Steps between checkpoints (and validation).")
@click.option("--val-fraction", type=click.FloatRange(0, 0.9, max_open=True), default=None,
              help="Fraction of frames held out at the end for validation [default: 0.1].")
@click.option("--tensorboard", is_flag=True, help="Also log losses and samples for TensorBoard (pip install tensorboard).")
@train_run_options
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same name (with the settings it was started with).")
@overwrite_option
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@quiet_option
@threads_option
@user_errors
def train_cmd(videos, name, runs_dir, preset, stages, face, steps, size, ngf, batch_size, lr, device,
              num_workers, landmarks, workers, person_layer, vgg_weights, vgg_backbone, no_vgg, seed, checkpoint_every, val_fraction,
              amp, tensorboard,
              cpu_bf16, compile, deterministic, sync_bn, resume, overwrite, dry_run, quiet) -> None:
    """Train a per-subject motion-transfer model on TARGET video(s) of one person.

    Prepares the data once (cached in RUNS/NAME/data), trains the global generator, the local
    enhancer at twice the resolution and, with --face, the face stage, then writes RUNS/NAME/model.pt
    for `dance transfer`. Interrupted runs continue with --resume. Runs under
    `torchrun --nproc_per_node N` too: rank 0 prepares the data and prints; all ranks train.
    """
    from ..dance.train import train_dance
    from ..training.distributed import is_main_process

    base = PRESETS[preset]
    overrides = {
        "size": parse_size(size) if size else None,
        "size_explicit": True if size else None,
        "ngf": ngf, "val_fraction": val_fraction, "landmarks": landmarks, "pose_workers": workers,
        "layer": None if person_layer is None else ("person" if person_layer else "full"),
        "vgg_weights": str(vgg_weights) if vgg_weights else None, "vgg_backbone": vgg_backbone,
        "vgg": False if no_vgg else (True if vgg_weights else None),
    }
    stage_names = parse_stages(stages) if stages else tuple(base.get("stages", ("global", "local")))
    if face and "face" not in stage_names:
        stage_names = parse_stages(",".join((*stage_names, "face")))
    overrides["stages"] = stage_names
    if steps:
        overrides["steps"] = parse_steps(steps, make_config(preset).steps, stage_names)
    if vgg_weights and no_vgg:
        raise UserError("--vgg-weights and --no-vgg contradict each other; give one.")
    train = train_settings(batch_size=batch_size, lr=lr, device=device, num_workers=num_workers, seed=seed,
                           checkpoint_every=checkpoint_every, amp=amp, tensorboard=tensorboard or None,
                           cpu_bf16=cpu_bf16, deterministic=deterministic, sync_bn=sync_bn, compile=compile)
    cfg = make_config(preset, train=train, **overrides)

    if dry_run:
        out = to_dict(cfg)
        out["videos"] = [str(v) for v in videos]  # recorded by train_dance; shown here as given
        try:
            from ..video import probe

            info = probe(videos[0])
            w, h = final_canvas(cfg, (info.width, info.height))
            out["resolution"] = [w, h]
        except UserError as exc:
            out["resolution"] = f"unknown ({exc})"
        click.echo(json.dumps(out, indent=2))
        return

    try:
        summary = train_dance(list(videos), name, cfg, runs_dir=runs_dir, resume=resume, overwrite=overwrite,
                              quiet=quiet, vgg_explicit=vgg_weights is not None)
    except KeyboardInterrupt:
        raise click.ClickException(
            f"interrupted; continue with `dance train {' '.join(map(str, videos))} --name {name} --resume"
            + (f" --runs-dir {runs_dir}" if runs_dir else "") + "`.") from None
    if not is_main_process():
        return  # under torchrun, rank 0 alone prints
    if not quiet:
        for line in summary.lines():
            click.echo(line)
    else:
        for note in summary.notes:
            click.echo(f"note: {note}", err=True)
