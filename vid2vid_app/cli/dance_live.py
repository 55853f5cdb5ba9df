"""`dance live -m NAME [--source 0|/dev/videoN|URL|FILE]`: motion transfer in real time."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..config import X264_PRESETS
from .common import (
    device_option,
    overwrite_option,
    quiet_option,
    runs_dir_option,
    threads_option,
    user_errors,
)

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*$")


def parse_seconds(value: str | None, option: str) -> float | None:
    """"3s", "3" or "2.5s" -> seconds; None stays None."""
    if value is None:
        return None
    m = _SECONDS.match(str(value))
    if not m:
        raise click.BadParameter(f"{value!r} is not a number of seconds, e.g. 3s or 2.5.", param_hint=option)
    return float(m.group(1))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "-m", required=True,
              help="Trained model: a name in the runs folder, a run folder, or a model.pt file.")
@click.option("--source", "-s", default="0", show_default=True, metavar="0|/dev/videoN|URL|FILE",
              help="A camera number, a V4L2 device, a stream URL (rtsp://, http://, ...) or a video file.")
@click.option("--window", is_flag=True,
              help="Show source | stick figure | result in a window (q or Esc quits, c re-calibrates).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record what is shown (the same three panels) with wall-clock timing (.mp4, .mkv, .mov, .m4v).")
@click.option("--serve", type=int, default=None, metavar="PORT",
              help="Serve the view as MJPEG with a small page on http://HOST:PORT/ (result alone: /result.mjpg). "
                   "0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address --serve listens on (0.0.0.0: every network interface).")
@click.option("--realtime", is_flag=True,
              help="Play a FILE source at its own frame rate, like a camera (frames the pipeline cannot keep up "
                   "with are dropped). Without it every frame of a file is processed, as fast as possible.")
@click.option("--loop", is_flag=True, help="Start a FILE source again when it ends.")
@click.option("--calibrate", default="3s", show_default=True, metavar="SECONDS",
              help="Calibration window after a person appears: their body statistics over it are frozen for "
                   "the pose normalisation (stand back so the whole body, feet included, is in view).")
@click.option("--no-normalize", is_flag=True,
              help="Skip the pose normalisation (for a source filmed like the target).")
@click.option("--duration", default=None, metavar="SECONDS", help="Stop after this long.  [default: until the "
              "source ends, q, Esc or Ctrl-C]")
@click.option("--stats-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write frames_in, frames_out, frames_dropped, fps, latency_ms_p50 and latency_ms_p95 at the end.")
@click.option("--record-fps", type=click.FloatRange(min=1, max=240), default=None,
              help="Frame rate of the recording.  [default: the source's]")
@click.option("--quality", default=23, show_default=True, type=click.IntRange(0, 51),
              help="x264 CRF of the recording (lower is better).")
@click.option("--encoder-preset", type=click.Choice(X264_PRESETS), default="veryfast", show_default=True,
              help="x264 speed preset of the recording (a slower one takes CPU from the generator).")
@click.option("--open-timeout", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds allowed to open a camera or stream, and to wait for each of its frames.")
@device_option
@runs_dir_option
@overwrite_option
@quiet_option
@threads_option
@user_errors
def live_cmd(model: str, source: str, window: bool, output: Path | None, serve: int | None, host: str,
             realtime: bool, loop: bool, calibrate: str, no_normalize: bool, duration: str | None,
             stats_json: Path | None, record_fps: float | None, quality: int, encoder_preset: str,
             open_timeout: float, device: str, runs_dir: Path | None, overwrite: bool, quiet: bool) -> None:
    """Make the trained target person copy the moves of whoever is in front of a camera, in a
    stream or in a video file, as the frames arrive.

    Capture, pose detection and generation run side by side, each on the newest frame (stale
    frames are dropped and counted). At least one output is needed: --window, -o or --serve.
    Ctrl-C stops cleanly; the recording is finalised.
    """
    from ..dance.live import LiveOptions, run_live
    from ..fileio import output_lock

    options = LiveOptions(
        source=source, window=window, output=output, serve=serve, host=host, realtime=realtime, loop=loop,
        calibrate=parse_seconds(calibrate, "--calibrate"), normalize=not no_normalize,
        duration=parse_seconds(duration, "--duration"), stats_json=stats_json, record_fps=record_fps,
        quality=quality, encoder_preset=encoder_preset, device=device, open_timeout=open_timeout,
        overwrite=overwrite)
    for path in (output, stats_json):
        if path is not None:  # one writer per output file for the whole session
            click.get_current_context().with_resource(output_lock(path))
    report = run_live(model, options, runs_dir=runs_dir, announce=click.echo)
    if not quiet:
        click.echo(report.summary())
