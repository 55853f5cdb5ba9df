"""`dance evaluate -m NAME [VIDEO] [--json OUT.json]`: reconstruction quality on the target person."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    device_option,
    overwrite_option,
    quiet_option,
    runs_dir_option,
    threads_option,
    user_errors,
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", required=False, type=click.Path(path_type=Path))
@click.option("--model", "-m", required=True,
              help="Trained model: a name in the runs folder, a run folder, or a model.pt file.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the metrics as JSON (keys psnr, ssim, lpips, pose_distance, flicker, ...).")
@click.option("--lpips-weights", type=click.Path(path_type=Path), default=None,
              help="Folder with the LPIPS weight files. Default: $VID2VID_WEIGHTS_DIR, or shared/weights beside a "
                   "source checkout; LPIPS is skipped with a note when none are found.")
@click.option("--lpips-net", type=click.Choice(["alexnet", "vgg16"]), default="alexnet", show_default=True,
              help="LPIPS backbone.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Evaluate at most this many frames.  [default: all]")
@click.option("--no-pose", is_flag=True, help="Skip the pose distance (it runs the pose detector).")
@click.option("--no-baselines", is_flag=True,
              help="Skip the mean-training-frame and nearest-training-pose baselines printed beside each metric.")
@device_option
@runs_dir_option
@overwrite_option
@quiet_option
@threads_option
@user_errors
def evaluate_cmd(video: Path | None, model: str, json_path: Path | None, lpips_weights: Path | None,
                 lpips_net: str, max_frames: int | None, no_pose: bool, no_baselines: bool, device: str, runs_dir: Path | None,
                 overwrite: bool, quiet: bool) -> None:
    """Reconstruct frames of the target person from their own poses and report PSNR, SSIM, LPIPS,
    pose distance, temporal flicker and background flicker, each beside two baselines (the mean
    training frame, the training frame of the nearest pose) so the figures say what the model adds.

    Without VIDEO: the held-out frames of the model's training video (the last part, never
    trained on). With VIDEO: every frame of it that shows a person (it should show the target).
    """
    from ..dance.evaluate import EvalOptions, evaluate
    from ..fileio import check_output_path, output_lock, write_json_atomic

    if json_path is not None:
        # One writer per output, for the whole command; its folder is checked before the work.
        click.get_current_context().with_resource(output_lock(json_path))
        check_output_path(json_path, overwrite)
    options = EvalOptions(video=video, lpips_weights=lpips_weights, lpips_net=lpips_net, max_frames=max_frames,
                          pose=not no_pose, baselines=not no_baselines, device=device, quiet=quiet,
                          outputs=(json_path,) if json_path is not None else ())
    report = evaluate(model, options, runs_dir=runs_dir)
    if json_path is not None:
        write_json_atomic(json_path, report.to_json(), replace=overwrite)
    # The table is the command's result, so it is printed even with --quiet (which only silences
    # progress bars).
    click.echo(report.table())
    if json_path is not None and not quiet:
        click.echo(f"wrote {json_path}")
