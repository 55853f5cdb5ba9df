"""The CLI's error wrapper: expected failures become one line and exit code 1, bugs keep their traceback.

A GPU running out of memory cannot be produced on the CPU-only test machines, so the test raises
torch's own OutOfMemoryError (the exception type CUDA allocations raise) inside a real click command.
"""

from __future__ import annotations

import click
import pytest
import torch
from click.testing import CliRunner

from vid2vid_app.cli.common import user_errors
from vid2vid_app.errors import UserError


def command_raising(exc: BaseException) -> click.Command:
    @click.command()
    @user_errors
    def cmd() -> None:
        raise exc

    return cmd


@pytest.mark.parametrize("exc, expected", [
    (UserError("clip.mp4 has no frames."), "Error: clip.mp4 has no frames."),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail"),
     "the GPU ran out of memory (CUDA out of memory. Tried to allocate 2.00 GiB)"),
    (MemoryError(), "out of memory; try a smaller --batch-size"),
    (KeyboardInterrupt(), "interrupted."),
    (OSError(28, "No space left on device", "/data/out.mp4"),
     "Error: cannot access /data/out.mp4: no space left on device (ENOSPC); free some space"),
    (PermissionError(13, "Permission denied", "/data/x.json"),
     "Error: cannot access /data/x.json: permission denied (EACCES); check the permissions"),
    (NotADirectoryError(20, "Not a directory", "/data/file/out.mp4"),
     "Error: cannot access /data/file/out.mp4: not a directory (ENOTDIR)."),
    (IsADirectoryError(21, "Is a directory", "/data/x.mp4"),
     "Error: cannot access /data/x.mp4: is a directory (EISDIR)."),
    (OSError(30, "Read-only file system", "/mnt/ro/out.png"),
     "Error: cannot access /mnt/ro/out.png: read-only file system (EROFS); choose a writable location."),
])
def test_expected_failures_are_one_clear_line(exc, expected):
    result = CliRunner().invoke(command_raising(exc))
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_other_runtime_errors_are_not_hidden():
    result = CliRunner().invoke(command_raising(RuntimeError("a bug")))
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
