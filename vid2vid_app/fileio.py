"""Safe output writing: temp file + rename, and the overwrite policy shared by every command."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import tempfile
import time
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


TEMP_MARK = ".tmp"
# Temp names this module writes: ".<stem>.<pid>-<random>.tmp<suffix>" (older versions: no pid).
_TEMP_NAME = re.compile(r"^\..+\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9]+)?$")
_UNOWNED_TEMP_AGE_S = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temp files and folders this project left in ``folder`` when a process was killed.

    Only names of this module's pattern are touched, and only when the process in the name is
    gone (names without a pid, from older versions: when untouched for an hour), so a live
    writer's temp file is never removed. Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match:
            continue
        pid = match.group("pid")
        try:
            stale = (not _pid_alive(int(pid))) if pid else \
                (time.time() - entry.lstat().st_mtime > _UNOWNED_TEMP_AGE_S)
            if not stale:
                continue
            if entry.is_dir() and not entry.is_symlink():
                import shutil

                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


class Busy(UserError):
    """Another live process holds the lock."""


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, what: str, *, notes: list[str] | None = None) -> Iterator[Path]:
    """Hold an OS-level lock (``flock``) on ``lock_file`` for the block; one writer at a time.

    The file records the owner's pid. The OS releases the lock when its process dies, so a lock
    left by a killed process is taken over (with a note appended to ``notes``). Raises
    :class:`Busy` naming ``what`` and the owner's pid when a live process holds it.
    """
    lock_file = Path(lock_file)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
    except OSError as exc:
        raise UserError(os_error_message(exc, lock_file, "lock")) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise UserError(os_error_message(exc, lock_file, "lock")) from None
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise Busy(f"{what} is in use by another process (pid {owner}); wait for it to finish "
                       f"or stop it first.") from None
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if previous.isdigit() and int(previous) != os.getpid() and notes is not None:
            notes.append(f"took over the lock of {what} left by process {previous}, which is gone.")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield lock_file
        finally:
            # The file stays (unlinking it would let a waiting process lock an orphaned inode);
            # emptied, it no longer names an owner.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """One writer per output path at a time, without leaving a lock file beside the user's output:
    the lock lives in the system temp folder under a hash of the absolute path."""
    import hashlib

    key = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:20]
    lock_dir = Path(tempfile.gettempdir()) / "vid2vid_app-locks"
    with exclusive_lock(lock_dir / f"{key}.lock", f"output {path}") as lock:
        yield lock


def os_error_message(exc: OSError, path: str | os.PathLike | None = None, action: str = "write") -> str:
    """One sentence for an OS error: the path, what was being done and the cause
    (e.g. "cannot write out.mp4: no space left on device (ENOSPC).")."""
    where = exc.filename if exc.filename else path
    code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    cause = (exc.strerror or str(exc)).rstrip(".").lower() if (exc.strerror or str(exc)) else "unknown error"
    hint = {errno.ENOSPC: " free some space or choose another location",
            errno.EDQUOT: " free some space or choose another location",
            errno.EACCES: " check the permissions or choose another location",
            errno.EPERM: " check the permissions or choose another location",
            errno.EROFS: " choose a writable location"}.get(exc.errno or 0, "")
    return (f"cannot {action} {where}: {cause}" + (f" ({code})" if code else "")
            + (f";{hint}" if hint else "") + ".")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temp file keeps the final suffix (encoders pick the container from it). On any exception
    the temp file is removed and the destination is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later run tell a dead process's leftover from a live writer's file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}-", suffix=f"{TEMP_MARK}{path.suffix}",
                               dir=path.parent)
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
