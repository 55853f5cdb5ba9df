"""`dance`: pose extraction, per-subject training, motion transfer and evaluation."""

from __future__ import annotations

import click

from .dance_evaluate import evaluate_cmd
from .dance_live import live_cmd
from .dance_pose import pose_cmd
from .dance_train import train_cmd
from .dance_transfer import transfer_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vid2vid_app")
def dance() -> None:
    """Motion transfer ("do as I do"): learn a target person, make them perform a source's moves."""


dance.add_command(pose_cmd, "pose")
dance.add_command(train_cmd, "train")
dance.add_command(transfer_cmd, "transfer")
dance.add_command(evaluate_cmd, "evaluate")
dance.add_command(live_cmd, "live")


if __name__ == "__main__":  # `python -m vid2vid_app.cli.dance`, e.g. under torchrun
    dance()
