"""Pieces shared by the `dance` and `translate-video` commands."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..config import X264_PRESETS
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
        except OSError as exc:
            # A full disk, a missing permission, a read-only or vanished folder: one sentence naming
            # the file and the cause (library code names the user's path where it knows it better).
            from ..fileio import os_error_message

            raise click.ClickException(os_error_message(exc, action="access")) from None
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
    return click.option("--encoder-preset", type=click.Choice(X264_PRESETS), default="medium", show_default=True,
                        help="x264 speed preset of video outputs: faster presets keep up with a GPU "
                             "(veryfast encodes about 2.3x faster than medium, files slightly larger "
                             "for the same quality).")(func)


def runs_dir_option(func):
    return click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Folder of trained models [default: $VID2VID_RUNS or ./runs].")(func)


def threads_option(func):
    """``--threads N`` for a command that computes: the CPU threads are set (PyTorch, OpenCV) by
    :func:`vid2vid_app.device.configure_threads` before the command's body runs. Put it above
    ``user_errors`` and below ``click.command``; the body does not receive ``threads``."""

    @functools.wraps(func)
    def with_threads(*args, threads: int | None = None, **kwargs):
        from ..device import configure_threads

        configure_threads(threads)
        return func(*args, **kwargs)

    return click.option(
        "--threads", type=click.IntRange(min=1), default=None,
        help="CPU threads for PyTorch and OpenCV [default: the cores not busy with other processes at "
             "start, or $OMP_NUM_THREADS].")(with_threads)


def train_run_options(func):
    """``--amp/--fp32``, ``--cpu-bf16``, ``--compile``, ``--deterministic`` and ``--sync-bn``: run
    settings of both training commands."""
    options = [
        click.option("--amp/--fp32", "amp", default=None,
                     help="--fp32: full precision on every device (no mixed precision on CUDA, no bf16 on the "
                          "CPU). --amp: mixed precision on CUDA (bf16, or fp16 with a grad scaler) [default: on, "
                          "except in dance's tiny preset]."),
        click.option("--cpu-bf16", is_flag=True,
                     help="bfloat16 autocast on the CPU even where it has no bf16 instructions (emulated there). "
                          "[default: on for CPUs with AVX512-BF16 or AMX, where steps at the papers' sizes run "
                          "1.4-1.8x faster at held-out PSNR within 0.3 dB of fp32; --fp32 turns it off]"),
        click.option("--compile", is_flag=True,
                     help="torch.compile the networks: the first step compiles them (about 1.5 min for CycleGAN "
                          "on 2 cores), then CycleGAN steps run about 13% faster on a CPU (pix2pix ones do not). "
                          "Pays off in long runs only; needs a C++ compiler on a CPU (else training runs without "
                          "it, with a note)."),
        click.option("--deterministic", is_flag=True,
                     help="Deterministic kernels only (torch.use_deterministic_algorithms, no cuDNN "
                          "autotuning): a rerun with the same --seed gives the same weights, at some speed cost."),
        click.option("--sync-bn", is_flag=True,
                     help="Under torchrun on GPUs: batch-norm statistics over all processes' batches "
                          "(SyncBatchNorm). No effect in a single process or on networks without batch norm."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def train_settings(*, amp: bool | None, cpu_bf16: bool, deterministic: bool, sync_bn: bool,
                   compile: bool = False, **values) -> dict:
    """Training options as TrainSettings overrides (``None``: keep the preset's value, or on
    ``--resume`` the run's). ``--fp32`` is full precision on every device: it turns off CUDA's mixed
    precision (``amp``) and the CPU's bf16 (``cpu_bf16``), so it contradicts ``--cpu-bf16``."""
    if cpu_bf16 and amp is False:
        raise UserError("--cpu-bf16 is mixed precision on the CPU and contradicts --fp32; give one of them.")
    flags = {"deterministic": deterministic, "sync_bn": sync_bn, "compile": compile}
    precision = {"amp": amp, "cpu_bf16": True if cpu_bf16 else (False if amp is False else None)}
    return {**values, **precision, **{k: True if v else None for k, v in flags.items()}}


def landmarks_option(func):
    """``--landmarks holistic|body``: which landmarks the pose detector finds."""
    from ..config import LANDMARK_SETS

    return click.option("--landmarks", type=click.Choice(LANDMARK_SETS), default="holistic", show_default=True,
                        help="holistic: body, face (70 points) and both hands (MediaPipe Holistic); body: the "
                             "33 body landmarks only (MediaPipe Pose, about 2.5 times faster).")(func)


def workers_option(func):
    """``--workers N``: processes of the pose pass."""
    return click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Processes that detect poses in parallel, each on its own part of a long video "
                             "[default: every core].")(func)
