"""`dance pose INPUT -o OUTDIR`: keypoints, OpenPose JSON, stick figures and an overlay preview."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import SMOOTHING_METHODS
from .common import (
    landmarks_option,
    overwrite_option,
    quiet_option,
    threads_option,
    user_errors,
    workers_option,
)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(path_type=Path), metavar="OUTDIR",
              help="Output folder (created if needed); its other files are kept.")
@click.option("--max-side", type=click.IntRange(min=16), default=None,
              help="Detect on frames downscaled to this longer side (faster); keypoints stay in "
                   "the input's pixels. [default: full resolution]")
@click.option("--no-smooth", is_flag=True, help="Keep the raw keypoints of videos (no temporal smoothing).")
@click.option("--smooth-method", type=click.Choice(SMOOTHING_METHODS), default="one_euro", show_default=True,
              help="Temporal smoothing for videos.")
@click.option("--max-gap", type=click.IntRange(min=0), default=None,
              help="Longest run of missed video frames to fill by interpolation. [default: 0.25 s of frames]")
@click.option("--no-overlay", is_flag=True, help="Skip the overlay preview.")
@landmarks_option
@workers_option
@overwrite_option
@quiet_option
@threads_option
@user_errors
def pose_cmd(input_path: Path, out_dir: Path, max_side: int | None, no_smooth: bool, smooth_method: str,
             max_gap: int | None, no_overlay: bool, landmarks: str, workers: int | None, overwrite: bool,
             quiet: bool) -> None:
    """Find the person in INPUT (a video, an image or a folder of images) and write to OUTDIR:
    keypoints.npz, openpose/ JSON, pose.mp4 stick figures and overlay.mp4 (pose.png and
    overlay.png for an image; pose/ and overlay/ folders for a folder of images). With the default
    --landmarks holistic the keypoints hold the face (70 points) and both hands as well."""
    from ..dance.pose_outputs import PoseOptions, extract_poses

    options = PoseOptions(max_side=max_side, smooth=not no_smooth, smooth_method=smooth_method,
                          max_gap=max_gap, overlay=not no_overlay, landmarks=landmarks, workers=workers)
    report = extract_poses(input_path, out_dir, options, overwrite=overwrite, quiet=quiet)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        for line in report.summary_lines():
            click.echo(line)
