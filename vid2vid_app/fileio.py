"""Safe output writing: temp file + rename, and the overwrite policy shared by every command."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; make sure its folder can be written.

    Returns the path as a :class:`Path`. Raises :class:`UserError` with a clear sentence otherwise.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite to replace it.")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {parent}: {exc.strerror or exc}.") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"output folder {parent} is not writable.")
    return path


@functools.cache
def umask() -> int:
    """The process umask, read once: reading it means setting it, which must not race with
    other threads creating files later."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temp file keeps the final suffix (encoders pick the container from it). On any exception
    the temp file is removed and the destination is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    # mkstemp makes the file private (0600); give it the permissions a plainly created file would get.
    os.fchmod(fd, 0o666 & ~umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json_atomic(path: str | os.PathLike, data: object) -> None:
    """Write ``data`` as indented JSON through a temp file + rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write raw bytes through a temp file + rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
