"""`translate-video`: frame-wise pix2pix / CycleGAN over videos, images and folders of images.

    translate-video --model NAME INPUT -o OUTPUT      (the default command, "run")
    translate-video train --mode pix2pix|cyclegan|todaygan --name NAME ...
    translate-video list
    translate-video export --model NAME --onnx OUT.onnx

This module only parses options and calls the library (translate.train, translate.model,
translate.run, translate.export_onnx).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UserError
from .common import (
    device_option,
    encoder_preset_option,
    overwrite_option,
    quiet_option,
    runs_dir_option,
    threads_option,
    train_run_options,
    train_settings,
    user_errors,
)

ARCH_CHOICES = ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks", "global", "local")
NORM_CHOICES = ("batch", "instance", "none")


class DefaultCommandGroup(click.Group):
    """A group that runs ``default_command`` when the first argument is not a subcommand, so that
    ``translate-video --model NAME in.mp4 -o out.mp4`` works without naming "run"."""

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in (*ctx.help_option_names, "--version"):
            first = args[0]
            # An option or an input file means the default command; a bare word that is neither
            # (e.g. "lsit") is a mistyped subcommand and gets click's "No such command".
            if first.startswith("-") or Path(first).exists() or Path(first).suffix:
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vid2vid_app")
def translate_video() -> None:
    """Frame-wise pix2pix / CycleGAN over videos, images and folders of images.

    \b
    Translate (the default command):
      translate-video --model NAME INPUT -o OUTPUT
    Train, list and export models:
      translate-video train --mode pix2pix --paired DIR_A DIR_B --name NAME
      translate-video train --mode cyclegan --domain-a night/ --domain-b day.mp4 --name NAME
      translate-video train --mode todaygan --domain-a night/ --domain-b day/ --name NAME
      translate-video list
      translate-video export --model NAME --onnx model.onnx
    Measure night -> day retrieval (Recall@1/5/10), raw queries vs models:
      translate-video evaluate-retrieval --queries night/ --database day/ --model NAME
    """


# ------------------------------------------------------------------------------------------------
# Options shared by the commands that load a model


def reference_options(func):
    """Architecture overrides for pytorch-CycleGAN-and-pix2pix / pix2pixHD checkpoints."""
    options = [
        click.option("--arch", type=click.Choice(ARCH_CHOICES), default=None,
                     help="Generator architecture of a reference checkpoint [default: inferred]."),
        click.option("--ngf", type=click.IntRange(1), default=None, help="Reference checkpoint: base width."),
        click.option("--norm", type=click.Choice(NORM_CHOICES), default=None,
                     help="Reference checkpoint: normalisation."),
        click.option("--n-blocks", type=click.IntRange(1), default=None,
                     help="Reference checkpoint: residual blocks."),
        click.option("--n-downs", type=click.IntRange(2), default=None,
                     help="Reference checkpoint: U-Net depth."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load(model: str, runs_dir: Path | None, device: str, ref: dict):
    from ..device import resolve_device
    from ..translate.model import load_model, resolve_model_path

    path = resolve_model_path(model, runs_dir)
    return load_model(path, resolve_device(device), **ref)


# ------------------------------------------------------------------------------------------------
# run (default)


@translate_video.command("run")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Output video, image or folder (the same kind as INPUT).")
@click.option("-m", "--model", required=True,
              help="Model name (in the runs folder), a model.pt path, or a pytorch-CycleGAN-and-pix2pix / "
                   "pix2pixHD generator checkpoint.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="CycleGAN: which way to translate [default: the model's training direction].")
@click.option("--mode", "expect_mode", type=click.Choice(["pix2pix", "cyclegan", "todaygan"]), default=None,
              help="Refuse to run unless the model is of this kind.")
@click.option("--size", default=None, metavar="WxH|N",
              help="Resize frames before translating: WxH exactly, or N for the longer side "
                   "[default: the input size, padded to the network's stride and cropped back].")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True, help="Frames per batch.")
@click.option("--side-by-side", is_flag=True, help="Write input | output side by side.")
@click.option("--temporal", is_flag=True,
              help="Reduce flicker: blend the previous output, warped by the input's optical flow, where "
                   "the input did not change.")
@click.option("--temporal-strength", type=click.FloatRange(0, 0.99), default=0.8, show_default=True,
              help="--temporal: largest weight of the previous output.")
@click.option("--temporal-sigma", type=click.FloatRange(0.1), default=10.0, show_default=True,
              help="--temporal: input change (0-255) at which the blend fades.")
@click.option("--no-audio", is_flag=True, help="Do not copy the input video's audio.")
@click.option("--quality", type=click.IntRange(0, 51), default=18, show_default=True,
              help="Video quality (x264 CRF; lower is better).")
@encoder_preset_option
@click.option("--fp32", is_flag=True, help="No mixed precision on GPU.")
@reference_options
@runs_dir_option
@device_option
@overwrite_option
@quiet_option
@threads_option
@user_errors
def run_cmd(input_path: Path, output: Path, model: str, direction: str | None, expect_mode: str | None,
            size: str | None, batch_size: int, side_by_side: bool, temporal: bool, temporal_strength: float,
            temporal_sigma: float, no_audio: bool, quality: int, encoder_preset: str, fp32: bool, arch, ngf, norm, n_blocks,
            n_downs, runs_dir: Path | None, device: str, overwrite: bool, quiet: bool) -> None:
    """Translate INPUT (a video, an image or a folder of images) into OUTPUT of the same kind.

    Videos keep their frame count, fps and audio; folders keep their file names.
    """
    from ..fileio import check_not_input, check_output_path, output_lock
    from ..progress import plural
    from ..translate.flicker import FlickerConfig
    from ..translate.run import TranslateOptions, parse_size, translate_media

    if not input_path.exists():
        raise UserError(f"{input_path} does not exist.")
    check_not_input(output, [input_path])
    # One writer per output: held until the command ends (translate_media takes it again, as a no-op).
    click.get_current_context().with_resource(output_lock(output))
    check_output_path(output, overwrite, folder=input_path.is_dir())  # fail before loading a model
    options = TranslateOptions(batch_size=batch_size, size=parse_size(size), device=device, amp=not fp32,
                               side_by_side=side_by_side, reduce_flicker=temporal,
                               flicker_config=FlickerConfig(strength=temporal_strength, sigma=temporal_sigma),
                               quality=quality, encoder_preset=encoder_preset, keep_audio=not no_audio, overwrite=overwrite, quiet=quiet)
    loaded = _load(model, runs_dir, device, dict(arch=arch, ngf=ngf, norm=norm, n_blocks=n_blocks, n_downs=n_downs))
    if expect_mode is not None and loaded.mode not in (expect_mode, "reference", "export"):
        raise UserError(f"{loaded.path} is a {loaded.mode} model, not {expect_mode}.")
    check_not_input(output, loaded.files)
    generator = loaded.generator(direction)
    report = translate_media(input_path, output, generator, options)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        audio = ", audio kept" if report.has_audio else ""
        click.echo(f"wrote {report.output} ({report.kind}, {plural(report.frames, 'frame')}, "
                   f"{report.size[0]}x{report.size[1]}"
                   f"{audio}) in {report.seconds:.1f} s ({report.fps:.2f} frames/s)", err=True)


# ------------------------------------------------------------------------------------------------
# train

# Options that go to the run settings (TranslateConfig.train) rather than to TranslateConfig itself.
_TRAIN_OPTIONS = ("batch_size", "lr", "seed", "num_workers", "checkpoint_every", "sample_every", "amp",
                  "tensorboard", "cpu_bf16", "deterministic", "sync_bn", "compile")


@translate_video.command("train")
@click.option("--mode", type=click.Choice(["pix2pix", "cyclegan", "todaygan"]), default=None,
              help="pix2pix (paired images), cyclegan (two unpaired domains) or todaygan (CycleGAN with "
                   "ToDayGAN's colour / grey / gradient discriminators, for night -> day). Required unless "
                   "--resume.")
@click.option("--name", required=True, help="Run name: the model is written to RUNS/NAME/model.pt.")
@click.option("--preset", type=click.Choice(["tiny", "standard"]), default="standard", show_default=True,
              help="tiny: small CPU demo (minutes); standard: the papers' settings.")
@click.option("--paired", nargs=2, type=click.Path(path_type=Path), default=None, metavar="DIR_A DIR_B",
              help="pix2pix: two folders with the same image names.")
@click.option("--aligned", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="pix2pix: one folder of A|B side-by-side images.")
@click.option("--paired-video", nargs=2, type=click.Path(path_type=Path), default=None, metavar="A B",
              help="pix2pix: two frame-aligned videos.")
@click.option("--domain-a", multiple=True, type=click.Path(path_type=Path),
              help="cyclegan, todaygan: image folder or video of domain A (repeat for more).")
@click.option("--domain-b", multiple=True, type=click.Path(path_type=Path),
              help="cyclegan, todaygan: image folder or video of domain B (repeat for more).")
@click.option("--frame-step", type=click.IntRange(1), default=None, help="Videos: use every N-th frame [1].")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Videos: at most N frames each.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="pix2pix: which side is the input; cyclegan: the default direction [AtoB].")
@click.option("--no-flip", is_flag=True, help="No random horizontal flips.")
@click.option("--preprocess", type=click.Choice(["resize_and_crop", "scale_width_and_crop", "crop"]),
              default=None, help="How images become training crops [resize_and_crop].")
@click.option("--load-size", type=click.IntRange(1), default=None, help="Resize to this before cropping.")
@click.option("--crop-size", type=click.IntRange(16), default=None, help="Training crop size.")
@click.option("--arch", type=click.Choice(ARCH_CHOICES[:4]), default=None, help="Generator architecture.")
@click.option("--ngf", type=click.IntRange(1), default=None, help="Generator base width.")
@click.option("--ndf", type=click.IntRange(1), default=None, help="Discriminator base width.")
@click.option("--norm", type=click.Choice(NORM_CHOICES), default=None, help="Generator normalisation.")
@click.option("--n-blocks", type=click.IntRange(1), default=None, help="ResNet residual blocks.")
@click.option("--n-downs", type=click.IntRange(2), default=None, help="U-Net depth (stride 2^N).")
@click.option("--gan-mode", type=click.Choice(["vanilla", "lsgan", "hinge", "rlsgan"]), default=None,
              help="GAN loss (rlsgan: relativistic LSGAN, todaygan's default and only for it).")
@click.option("--lambda-l1", type=float, default=None, help="pix2pix L1 weight [100].")
@click.option("--lambda-cycle", type=float, default=None, help="cyclegan cycle weight [10].")
@click.option("--lambda-identity", type=float, default=None,
              help="cyclegan identity weight x cycle [0.5; todaygan 0].")
@click.option("--pool-size", type=click.IntRange(0), default=None, help="cyclegan history pool [50].")
@click.option("--epochs", type=click.IntRange(0), default=None, help="Epochs at constant LR [100].")
@click.option("--epochs-decay", type=click.IntRange(0), default=None, help="Epochs of linear LR decay [100].")
@click.option("--steps", type=click.IntRange(1), default=None, help="Total steps (instead of epochs).")
@click.option("--decay-steps", type=click.IntRange(0), default=None, help="Steps of linear LR decay.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Batch size.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Adam learning rate [2e-4].")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="pix2pix: fraction of pairs held out for validation [0.1].")
@click.option("--seed", type=int, default=None, help="Random seed [0].")
@click.option("--num-workers", type=click.IntRange(0), default=None, help="Data loader workers [0].")
@click.option("--checkpoint-every", type=click.IntRange(1), default=None, help="Checkpoint (and validate) "
              "every N steps.")
@click.option("--sample-every", type=click.IntRange(1), default=None, help="Sample grid every N steps.")
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="Also log losses and samples for TensorBoard (pip install tensorboard).")
@train_run_options
@click.option("--resume", is_flag=True, help="Continue the run NAME from its last checkpoint.")
@click.option("--dry-run", is_flag=True, help="Print the resolved settings and data sizes, then stop.")
@runs_dir_option
@device_option
@overwrite_option
@quiet_option
@threads_option
@click.pass_context
@user_errors
def train_cmd(ctx: click.Context, mode: str | None, name: str, preset: str, paired, aligned, paired_video,
              domain_a, domain_b, frame_step, max_frames, direction, no_flip, resume: bool, dry_run: bool,
              runs_dir: Path | None, device: str, overwrite: bool, quiet: bool, **settings) -> None:
    """Train a pix2pix or CycleGAN model into RUNS/NAME (model: RUNS/NAME/model.pt).

    Runs under `torchrun --nproc_per_node N` too: rank 0 prepares the run and prints; all ranks train.
    """
    from ..config import to_dict
    from ..runs import run_folder
    from ..training.distributed import is_main_process
    from ..translate.config import DataSpec, make_config
    from ..translate.train import prepare_data, resumed_config, train_translation

    quiet = quiet or not is_main_process()  # under torchrun, rank 0 alone prints

    run_dir = run_folder(name, runs_dir)
    data = None
    if paired or aligned or paired_video or domain_a or domain_b:
        data = DataSpec(paired=tuple(str(p) for p in paired or ()), aligned=str(aligned) if aligned else None,
                        paired_video=tuple(str(p) for p in paired_video or ()),
                        domain_a=tuple(str(p) for p in domain_a), domain_b=tuple(str(p) for p in domain_b),
                        frame_step=frame_step or 1, max_frames=max_frames)
    given = {k for k in ctx.params if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    train = train_settings(device=None if device == "auto" else device,
                           **{key: settings.pop(key) for key in _TRAIN_OPTIONS})

    if resume:
        cfg, ignored = resumed_config(run_dir, mode=mode, settings=settings, train=train, data=data, given=given,
                                      overwrite=overwrite)
        if ignored and not quiet:
            click.echo(f"note: on --resume the run's saved settings are used; ignoring "
                       f"{', '.join('--' + k.replace('_', '-') for k in ignored)}.", err=True)
    else:
        if mode is None:
            raise UserError("--mode pix2pix, --mode cyclegan or --mode todaygan is required.")
        cfg = make_config(mode, preset, direction=direction, flip=False if no_flip else None, data=data,
                          train=train, **settings)
        if data is None:
            prepare_data(cfg)  # raises the "no training data" error

    if dry_run:
        prepared = prepare_data(cfg, quiet=True)
        steps, decay = cfg.total_steps(len(prepared.train))
        click.echo(json.dumps({"run_dir": str(run_dir), "config": to_dict(cfg), "data": prepared.sizes,
                               "steps": steps, "decay_steps": decay, "notes": prepared.notes}, indent=2))
        return

    def say(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    # An existing run is refused (or with --overwrite deleted) there, by rank 0 alone under torchrun.
    result = train_translation(cfg, run_dir, resume=resume, overwrite=overwrite, quiet=quiet, log=say)
    if not quiet:
        from ..device import thread_note
        from ..progress import plural

        precision = f", {result.precision}" if result.precision else ""
        lines = [f"trained {result.mode} model {name}: {plural(result.steps, 'step')} in {result.seconds / 60:.1f} min "
                 f"on {thread_note()}{precision}",
                 f"model: {result.model_path}"]
        if result.val:
            v = result.val
            lines.append(f"validation: L1 {v['val_l1']:.4f} (identity {v['val_identity_l1']:.4f}), "
                         f"PSNR {v['val_psnr']:.2f} dB (identity {v['val_identity_psnr']:.2f} dB)")
        lines.append(f"use it: translate-video --model {name} INPUT -o OUTPUT"
                     + (f" --runs-dir {run_dir.parent}" if runs_dir is not None else ""))
        click.echo("\n".join(lines), err=True)


# ------------------------------------------------------------------------------------------------
# list


@translate_video.command("list")
@runs_dir_option
@user_errors
def list_cmd(runs_dir: Path | None) -> None:
    """List the translate models in the runs folder (name, mode, directions, training size, arch)."""
    from ..runs import runs_dir as resolve_runs_dir
    from ..translate.model import list_models

    folder = resolve_runs_dir(runs_dir)
    records = list_models(folder)
    if not records:
        click.echo(f"no translate models in {folder}")
        return
    rows = [("NAME", "MODE", "DIRECTIONS", "TRAIN SIZE", "ARCH")]
    for r in records:
        size = r.details.get("train_size")
        rows.append((r.name, r.details["mode"], ",".join(r.details["directions"]), f"{size}x{size}" if size else "?",
                     r.details["arch"]))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# ------------------------------------------------------------------------------------------------
# export


@translate_video.command("export")
@click.option("-m", "--model", required=True, help="Model name, model.pt path or reference checkpoint.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), required=True, help="Output .onnx file.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="CycleGAN: which generator to export [default: the model's direction].")
@click.option("--opset", type=click.IntRange(11), default=17, show_default=True, help="ONNX opset.")
@reference_options
@runs_dir_option
@overwrite_option
@threads_option
@user_errors
def export_cmd(model: str, onnx_path: Path, direction: str | None, opset: int, arch, ngf, norm, n_blocks, n_downs,
               runs_dir: Path | None, overwrite: bool) -> None:
    """Export a generator to ONNX (dynamic batch, height, width) and check it with onnxruntime."""
    from ..fileio import check_not_input, check_output_path, output_lock
    from ..translate.export_onnx import export_onnx

    click.get_current_context().with_resource(output_lock(onnx_path))
    check_output_path(onnx_path, overwrite)
    loaded = _load(model, runs_dir, "cpu", dict(arch=arch, ngf=ngf, norm=norm, n_blocks=n_blocks, n_downs=n_downs))
    check_not_input(onnx_path, loaded.files)
    report = export_onnx(loaded.generator(direction), onnx_path, opset=opset, overwrite=overwrite)
    click.echo(f"wrote {report.path}; onnxruntime vs PyTorch on a {tuple(report.check_shape)} input: "
               f"max abs diff {report.max_abs_diff:.2e}")


# ------------------------------------------------------------------------------------------------
# evaluate-retrieval


@translate_video.command("evaluate-retrieval")
@click.option("--queries", type=click.Path(path_type=Path), required=True, metavar="DIR|VIDEO",
              help="Query images (e.g. night photos): a folder, a video or one image.")
@click.option("--database", type=click.Path(path_type=Path), required=True, metavar="DIR|VIDEO",
              help="Database images of known places (e.g. day photos): a folder, a video or one image.")
@click.option("--ground-truth", type=click.Path(path_type=Path), default=None, metavar="CSV",
              help="Rows query,match[,match...] (file names or frame numbers) [default: a query matches "
                   "the database image of the same name or frame number].")
@click.option("-m", "--model", "models", multiple=True, metavar="NAME",
              help="Also translate the queries with this model first (repeat to compare several).")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="Which way the models translate [default: each model's own direction].")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help='Write {"raw": {"recall@1": ..., "recall@5": ..., "recall@10": ...}, "<model>": {...}} '
                   "(values in [0, 1]).")
@click.option("--weights", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="ImageNet VGG16 weights for the descriptor [default: vgg16_features_imagenet.pth in "
                   "$VID2VID_WEIGHTS_DIR or shared/weights, or the torch hub cache].")
@click.option("--max-side", type=click.IntRange(32), default=512, show_default=True,
              help="Describe images at the database's size, downscaled to at most this longer side...")
@click.option("--min-side", type=click.IntRange(32), default=128, show_default=True,
              help="...or enlarged to at least this shorter side (VGG16's conv5 sees 1/16 of the input: "
                   "small crops would leave it a few pixels).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Images per batch.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where database descriptors are cached [default: $VID2VID_CACHE, else "
                   "~/.cache/vid2vid_app, then retrieval/].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached database descriptors.")
@runs_dir_option
@device_option
@overwrite_option
@quiet_option
@threads_option
@user_errors
def evaluate_retrieval_cmd(queries: Path, database: Path, ground_truth: Path | None, models: tuple[str, ...],
                           direction: str | None, json_path: Path | None, weights: Path | None, max_side: int,
                           min_side: int, batch_size: int, cache_dir: Path | None, no_cache: bool, runs_dir: Path | None,
                           device: str, overwrite: bool, quiet: bool) -> None:
    """Recall@1/5/10 of retrieving each query's place among the database images, for the raw
    queries and for the queries translated by each --model (e.g. night -> day).

    The descriptor is GeM-pooled VGG16 conv5 (ImageNet weights, L2-normalised) compared by cosine
    similarity; the database's descriptors are cached, so comparing models computes them once.
    """
    from ..fileio import check_not_input, check_output_path, output_lock, write_json_atomic
    from ..translate.retrieval import RetrievalOptions, evaluate_retrieval, format_table

    if json_path is not None:
        # Never over an input (query or database files, ground truth, weights); one writer at a time.
        from ..translate.model import resolve_model_path

        check_not_input(json_path, [queries, database, ground_truth, weights,
                                    *(resolve_model_path(m, runs_dir) for m in models)])
        click.get_current_context().with_resource(output_lock(json_path))
        check_output_path(json_path, overwrite)
    options = RetrievalOptions(queries=queries, database=database, ground_truth=ground_truth, models=models,
                               direction=direction, runs_dir=runs_dir, weights=weights, device=device,
                               batch_size=batch_size, max_side=max_side, min_side=min_side, cache_dir=cache_dir,
                               use_cache=not no_cache, quiet=quiet)
    report = evaluate_retrieval(options)
    if not quiet:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    click.echo(format_table(report))
    if json_path is not None:
        write_json_atomic(json_path, report.as_json(), replace=overwrite)
        if not quiet:
            click.echo(f"wrote {json_path}", err=True)


if __name__ == "__main__":  # `python -m vid2vid_app.cli.translate`, e.g. under torchrun
    translate_video()
