"""Pieces shared by the `dance` and `translate-video` commands."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click

from ..errors import UserError


def user_errors(func):
    """Turn library :class:`UserError` (and other expected failures) into a clean CLI error:
    one line on stderr, exit code 1, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted.") from None
        except MemoryError:
            raise click.ClickException("out of memory; try a smaller --batch-size (or --size where the "
                                       "command has one).") from None
        except RuntimeError as exc:
            # torch.OutOfMemoryError (GPU) is a RuntimeError; anything else is a bug and keeps its traceback.
            if type(exc).__name__ != "OutOfMemoryError":
                raise
            raise click.ClickException(f"the GPU ran out of memory ({str(exc).splitlines()[0]}); try a smaller "
                                       "--batch-size (or --size where the command has one), or --device cpu.") from None

    return wrapper


def quiet_option(func):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries.")(func)


def overwrite_option(func):
    return click.option("--overwrite", is_flag=True, help="Replace outputs that already exist.")(func)


def device_option(func):
    return click.option("--device", default="auto", show_default=True,
                        help="cpu, cuda, cuda:N, or auto (CUDA when available).")(func)


def encoder_preset_option(func):
    from ..video.writer import X264_PRESETS

    return click.option("--encoder-preset", type=click.Choice(X264_PRESETS), default="medium", show_default=True,
                        help="x264 speed preset of video outputs: faster presets keep up with a GPU "
                             "(veryfast encodes about 2.3x faster than medium, files slightly larger "
                             "for the same quality).")(func)


def runs_dir_option(func):
    return click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Folder of trained models [default: $VID2VID_RUNS or ./runs].")(func)


def default_runs_dir(runs_dir: Path | None) -> Path:
    """--runs-dir, else $VID2VID_RUNS, else ./runs."""
    if runs_dir is not None:
        return Path(runs_dir)
    return Path(os.environ.get("VID2VID_RUNS", "runs"))
