"""`dance transfer SOURCE -m NAME -o OUT.mp4`: the target person performs the source's moves."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    device_option,
    encoder_preset_option,
    overwrite_option,
    quiet_option,
    runs_dir_option,
    threads_option,
    user_errors,
    workers_option,
)

SBS_AUTO = "__auto__"


def side_by_side_path(value: str | None, output: Path) -> Path | None:
    """``--side-by-side`` alone -> OUT_sbs.mp4 beside the output; with a value -> that path."""
    if value is None:
        return None
    if value == SBS_AUTO:
        return output.with_name(f"{output.stem}_sbs{output.suffix}")
    return Path(value)


def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    """"X,Y,W,H" -> (x, y, w, h)."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise click.BadParameter(f"{text!r} is not X,Y,WIDTH,HEIGHT in pixels, e.g. 100,200,260,440.",
                                 param_hint="--crop")
    return values


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--model", "-m", required=True,
              help="Trained model: a name in the runs folder, a run folder, or a model.pt file.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Video to write (.mp4, .mov, .m4v or .mkv).")
@click.option("--side-by-side", "side_by_side", is_flag=False, flag_value=SBS_AUTO, default=None,
              metavar="[PATH]",
              help="Also write source | stick figure | generated; alone it writes OUT_sbs.mp4 beside the output "
                   "(put it after SOURCE, or give PATH, so it does not take SOURCE as its path).")
@click.option("--start", default=None, metavar="FRAME|SECONDSs",
              help="First source frame to transfer: a frame number (120) or seconds (2.5s).  [default: 0]")
@click.option("--end", default=None, metavar="FRAME|SECONDSs",
              help="Stop before this frame (120) or time (2.5s).  [default: the end]")
@click.option("--crop", default=None, metavar="X,Y,W,H",
              help="Use only this region of the source (pixels), e.g. to pick one of several people.")
@click.option("--poses", type=click.Path(path_type=Path), default=None, metavar="KEYPOINTS.npz",
              help="Use the keypoints that `dance pose SOURCE -o DIR` wrote (DIR/keypoints.npz, or DIR) instead "
                   "of detecting the source's poses again; they must belong to SOURCE (same frame count and size).")
@click.option("--no-normalize", is_flag=True,
              help="Skip global pose normalisation (for a source filmed like the target).")
@click.option("--whole-clip", is_flag=True,
              help="Detect the whole source before generating: normalisation statistics and smoothing from every "
                   "frame, exactly as earlier versions (slower). By default generation starts while the source is "
                   "still being detected, with statistics from a first look at a sample of its frames.")
@click.option("--background", default=None, metavar="plate|source|none|IMAGE|VIDEO",
              help="Behind the dancer of a person-layer model: the target's clean plate, the source's own scene, "
                   "black, or an image or video file (fitted to cover the output and centre-cropped; a shorter "
                   "video loops).  [default: plate]")
@click.option("--alpha", type=click.Path(path_type=Path), default=None, metavar="OUT.mp4|DIR",
              help="Also write the person layer's alpha matte: a grey matte video, or a folder of PNGs with "
                   "transparency (the dancer's colour with the matte), for compositing elsewhere.")
@click.option("--quality", default=18, show_default=True, type=click.IntRange(0, 51),
              help="x264 CRF of the output (lower is better; 18 is visually lossless).")
@encoder_preset_option
@device_option
@workers_option
@runs_dir_option
@overwrite_option
@quiet_option
@threads_option
@user_errors
def transfer_cmd(source: Path, model: str, output: Path, side_by_side: str | None, start: str | None,
                 end: str | None, crop: str | None, poses: Path | None, no_normalize: bool, whole_clip: bool,
                 background: str | None, alpha: Path | None, quality: int,
                 encoder_preset: str, device: str,
                 runs_dir: Path | None, overwrite: bool, quiet: bool, workers: int | None = None) -> None:
    """Make the trained target person perform the moves of the person in SOURCE.

    Detects and smooths the source's poses, normalises them onto the target's body statistics,
    renders stick figures at the model's resolution, generates frame by frame (each output fed
    back into the next) and encodes at the source's frame rate with the source's audio. The
    output has exactly one frame per source frame in [--start, --end). Generation starts while
    the source is still being detected (--whole-clip: after it).

    With --poses KEYPOINTS.npz (from `dance pose SOURCE`) the poses are read instead of detected:
    no pose detector runs, and the keypoints are used as `dance pose` left them (gaps filled,
    smoothed).
    """
    from ..dance.transfer import TransferOptions, transfer

    options = TransferOptions(
        start=start, end=end, normalize=not no_normalize, side_by_side=side_by_side_path(side_by_side, output),
        crop=parse_crop(crop), poses=poses, device=device, quality=quality,
        encoder_preset=encoder_preset, quiet=quiet, overwrite=overwrite, workers=workers,
        background=background, alpha=alpha, whole_clip=whole_clip)
    report = transfer(source, model, output, options, runs_dir=runs_dir)
    if not quiet:
        click.echo(report.summary())
