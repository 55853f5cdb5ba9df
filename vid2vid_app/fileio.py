"""Safe output writing: temp file + rename, and the overwrite policy shared by every command."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError


def check_output_path(path: str | os.PathLike, overwrite: bool, *, folder: bool = False) -> Path:
    """Refuse an existing output unless ``overwrite``; make sure its folder can be written.

    ``folder``: the output is a folder (else a file; an existing folder of that name is refused
    even with ``overwrite``, since replacing it would delete a user's folder). The folder the
    output goes into is created and really written to (a probe file), so a read-only or full
    location fails here, before any work; stale temp files of this project in it are removed
    (:func:`remove_stale_temps`). Returns the path as a :class:`Path`. Raises
    :class:`UserError` with a clear sentence otherwise.
    """
    path = Path(path)
    if path.is_dir() and not folder:
        raise UserError(f"{path} is a folder; give a file name for the output (a folder is never replaced "
                        "by a file).")
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file; the output must be a folder.")
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite to replace it.")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"cannot create output folder {parent}: it is a file.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(os_error_message(exc, parent, "create output folder")) from None
    target = path if folder and path.is_dir() else parent
    check_writable(target)
    remove_stale_temps(target)
    return path


def check_writable(folder: str | os.PathLike) -> None:
    """Create and remove a small probe file in ``folder``: :class:`UserError` naming the folder and
    the cause when that fails (read-only file system, no permission, a location such as /proc that
    takes no new files). Checking ``os.access`` is not enough: it says yes to root everywhere."""
    folder = Path(folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".write-test.{os.getpid()}-", suffix=TEMP_MARK, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno == errno.ENOENT and folder.is_dir():
            raise UserError(f"cannot write into {folder}: this location does not take new files.") from None
        raise UserError(os_error_message(exc, folder, "write into")) from None


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an ``output`` that would replace or remove one of the command's ``inputs`` (None
    entries are skipped), whatever ``--overwrite`` says.

    Refused: the same file (compared as resolved paths, and with ``os.path.samefile`` where both
    exist, which also sees hard links and other names of one file), an output inside an input
    folder, and an output that holds an input (replacing that folder would delete the input).
    Raises :class:`UserError` naming both paths.
    """
    out = Path(output)
    out_resolved = _resolved(out)
    for item in inputs:
        if item is None:
            continue
        inp = Path(item)
        in_resolved = _resolved(inp)
        same = out_resolved == in_resolved
        if not same and out.exists() and inp.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, inp)
        if same:
            which = "" if str(out) == str(inp) else f" {inp} (the same file)"
            raise UserError(f"{out} is the input{which}; choose another output path (inputs are never "
                            "overwritten).")
        if inp.is_dir() and out_resolved.is_relative_to(in_resolved):
            raise UserError(f"{out} is inside the input folder {inp}; choose an output outside it "
                            "(inputs are never overwritten).")
        if in_resolved.is_relative_to(out_resolved):
            raise UserError(f"{out} holds the input {inp}; choose another output path "
                            "(inputs are never overwritten).")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the absolute path instead
        return path.absolute()


@functools.cache
def umask() -> int:
    """The process umask, read once: reading it means setting it, which must not race with
    other threads creating files later."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


TEMP_MARK = ".tmp"
# Temp names this project writes: ".<stem>.<pid>-<random>.tmp<suffix>" (files and staging
# folders; older versions: no pid), and the staging folder of older `dance pose` versions,
# ".pose-<random>.tmp". The random part is tempfile's 8 characters.
_TEMP_NAME = re.compile(r"^(?:\..+\.(?:(?P<pid>\d+)-)?|\.pose-)[A-Za-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9]+)?$")
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
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # e.g. a full disk: even the pid does not fit
            raise UserError(os_error_message(exc, lock_file, "lock")) from None
        try:
            yield lock_file
        finally:
            # The file stays (unlinking it would let a waiting process lock an orphaned inode);
            # emptied, it no longer names an owner.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


# Output locks this process holds: lock file -> (thread, depth). A command that locks its output
# and then calls a library function locking the same output must not lock itself out.
_HELD_OUTPUTS: dict[Path, tuple[int, int]] = {}
_HELD_OUTPUTS_GUARD = threading.Lock()


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """One writer per output path at a time, without leaving a lock file beside the user's output:
    the lock lives in the system temp folder under a hash of the absolute path.

    Re-entrant within one thread (the command and the library function it calls may both lock the
    output); another thread or process gets :class:`Busy`.
    """
    import hashlib

    key = hashlib.sha1(str(_resolved(Path(path))).encode()).hexdigest()[:20]
    lock_file = Path(tempfile.gettempdir()) / "vid2vid_app-locks" / f"{key}.lock"
    me = threading.get_ident()
    with _HELD_OUTPUTS_GUARD:
        owner, depth = _HELD_OUTPUTS.get(lock_file, (None, 0))
        if owner == me:
            _HELD_OUTPUTS[lock_file] = (me, depth + 1)
    if owner == me:
        try:
            yield lock_file
        finally:
            with _HELD_OUTPUTS_GUARD:
                _HELD_OUTPUTS[lock_file] = (me, depth)
        return
    with exclusive_lock(lock_file, f"the output {path}") as lock:
        with _HELD_OUTPUTS_GUARD:
            _HELD_OUTPUTS[lock_file] = (me, 1)
        try:
            yield lock
        finally:
            with _HELD_OUTPUTS_GUARD:
                _HELD_OUTPUTS.pop(lock_file, None)


@contextlib.contextmanager
def output_locks(*paths: str | os.PathLike | None) -> Iterator[None]:
    """:func:`output_lock` on each of ``paths`` (None entries skipped) for the block."""
    with contextlib.ExitStack() as stack:
        for path in paths:
            if path is not None:
                stack.enter_context(output_lock(path))
        yield


def os_error_message(exc: OSError, path: str | os.PathLike | None = None, action: str = "write") -> str:
    """One sentence for an OS error: the path, what was being done and the cause
    (e.g. "cannot write out.mp4: no space left on device (ENOSPC).").

    ``path`` names the file the user knows (the output rather than its hidden temp file); without
    it the error's own file name is used."""
    where = path if path is not None else exc.filename
    code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    cause = (exc.strerror or str(exc)).rstrip(".").lower() if (exc.strerror or str(exc)) else "unknown error"
    hint = {errno.ENOSPC: " free some space or choose another location",
            errno.EDQUOT: " free some space or choose another location",
            errno.EACCES: " check the permissions or choose another location",
            errno.EPERM: " check the permissions or choose another location",
            errno.EROFS: " choose a writable location"}.get(exc.errno or 0, "")
    return (f"cannot {action}" + (f" {where}" if where is not None else "") + f": {cause}"
            + (f" ({code})" if code else "")
            + (f";{hint}" if hint else "") + ".")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temp file keeps the final suffix (encoders pick the container from it). On any exception
    the temp file is removed and the destination is left untouched. ``replace=False`` (an output
    written without --overwrite) refuses, at the final rename, a ``path`` that another program
    created meanwhile. OS errors on the temp file (a full disk, a read-only location) become a
    :class:`UserError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The pid in the name lets a later run tell a dead process's leftover from a live writer's file.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}-", suffix=f"{TEMP_MARK}{path.suffix}",
                                   dir=path.parent)
    except OSError as exc:
        raise UserError(os_error_message(exc, path)) from None
    # mkstemp makes the file private (0600); give it the permissions a plainly created file would get.
    os.fchmod(fd, 0o666 & ~umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _move_into_place(tmp_path, path, replace)
    except OSError as exc:
        if exc.filename is not None and os.path.basename(str(exc.filename)) != tmp_path.name:
            raise  # about another file (e.g. an input read inside the block): its own message
        raise UserError(os_error_message(exc, path)) from None
    except RuntimeError as exc:
        # torch.save reports a failed write (e.g. a full disk) as a RuntimeError of its stream writer.
        if "PytorchStreamWriter" not in str(exc) and "inline_container" not in str(exc):
            raise
        raise UserError(_failed_write_message(path)) from None
    finally:
        with contextlib.suppress(OSError):
            if tmp_path.exists():
                tmp_path.unlink()


def _move_into_place(tmp: Path, path: Path, replace: bool) -> None:
    """Rename ``tmp`` onto ``path``; with ``replace=False`` atomically refuse an existing ``path``
    (a hard link fails when the name exists; where links are not supported, check, then rename)."""
    appeared = UserError(f"{path} appeared while this command was writing it and was left as it is; "
                         "pass --overwrite to replace it.")
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise appeared from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        if path.exists():
            raise appeared from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _failed_write_message(path: Path) -> str:
    """A sentence for a write that failed without an OS error number (torch's C++ writer)."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < 1 << 20:
        return os_error_message(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)
    return f"cannot write {path}: the write failed (is the disk full or the location read-only?)."


def write_json_atomic(path: str | os.PathLike, data: object, *, replace: bool = True) -> None:
    """Write ``data`` as indented JSON through a temp file + rename (see :func:`atomic_path`)."""
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, replace: bool = True) -> None:
    """Write raw bytes through a temp file + rename (see :func:`atomic_path`)."""
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_bytes(data)
