"""Helpers for the tests of safe output writing: a lock held by a real second process, and a
really full file system (a small tmpfs, which needs root to mount)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOLD_LOCK = """
import sys, time
from vid2vid_app.fileio import output_lock
with output_lock(sys.argv[1]):
    open(sys.argv[2], "w").close()
    time.sleep(120)
"""


@contextlib.contextmanager
def output_locked_by_another_process(path: str | os.PathLike, ready_dir: Path) -> Iterator[int]:
    """A second Python process holds :func:`vid2vid_app.fileio.output_lock` on ``path`` for the
    block (as a running `translate-video`, `dance transfer` or `dance pose` would); yields its pid."""
    ready = Path(ready_dir) / f"lock-ready-{os.getpid()}"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the lock-holding process did not start")
            time.sleep(0.05)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def full_tmpfs(folder: Path, free: int = 0) -> Iterator[Path]:
    """Mount a 1 MiB tmpfs on ``folder`` and fill it up to its last ``free`` bytes (new empty files
    can still be created, but writing more data fails with ENOSPC); unmounted afterwards. Skips the
    test where mounting is not permitted (not root, or in a container without the capability)."""
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or 'not permitted'}")
    try:
        with open(folder / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 4096)
        if free:
            os.truncate(folder / "filler", max(0, (folder / "filler").stat().st_size - free))
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
