"""Safe output writing (vid2vid_app.fileio): inputs never overwritten, one writer per output,
OS errors as one sentence, nothing half-written, stale temp files of killed processes removed."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from fileio_utils import full_tmpfs, output_locked_by_another_process

from vid2vid_app import fileio
from vid2vid_app.errors import UserError
from vid2vid_app.fileio import (
    Busy,
    atomic_path,
    check_not_input,
    check_output_path,
    os_error_message,
    output_lock,
    remove_stale_temps,
    write_bytes_atomic,
    write_json_atomic,
)


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------ inputs


def test_output_equal_to_an_input_is_refused_under_any_name(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"input")
    (tmp_path / "link.mp4").symlink_to(video)
    os.link(video, tmp_path / "hard.mp4")
    for output in (video, tmp_path / "link.mp4", tmp_path / "sub" / ".." / "v.mp4", tmp_path / "hard.mp4"):
        with pytest.raises(UserError, match="is the input"):
            check_not_input(output, [None, tmp_path / "other.mp4", video])
    check_not_input(tmp_path / "out.mp4", [video, None])  # another file is fine
    assert video.read_bytes() == b"input"


def test_output_inside_an_input_folder_or_holding_an_input_is_refused(tmp_path):
    run = tmp_path / "runs" / "m"
    (run / "data").mkdir(parents=True)
    (run / "model.pt").write_bytes(b"model")
    with pytest.raises(UserError, match="inside the input folder"):
        check_not_input(run / "metrics.json", [run])
    with pytest.raises(UserError, match="holds the input"):
        check_not_input(tmp_path / "runs", [run / "model.pt"])
    check_not_input(run / "metrics.json", [run / "model.pt", run / "data"])  # beside the inputs: fine


# ------------------------------------------------------------------------------ output checks


def test_an_existing_folder_is_never_taken_for_a_file_output(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    (tmp_path / "x.mp4" / "mine.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(UserError, match="x.mp4 is a folder; give a file name"):
            check_output_path(tmp_path / "x.mp4", overwrite)
    (tmp_path / "frames").write_text("a file")
    with pytest.raises(UserError, match="is a file; the output must be a folder"):
        check_output_path(tmp_path / "frames", True, folder=True)
    assert (tmp_path / "x.mp4" / "mine.txt").read_text() == "mine"


def test_a_location_that_takes_no_files_fails_before_any_work():
    with pytest.raises(UserError) as info:
        check_output_path("/proc/out.mp4", overwrite=True)
    assert str(info.value).startswith("cannot write into /proc:") and "\n" not in str(info.value)


def test_read_only_location_is_named_with_its_cause(tmp_path, monkeypatch):
    """EROFS cannot be produced without mounting; the probe's open() raises it instead."""
    real_mkstemp = fileio.tempfile.mkstemp

    def read_only(*args, **kwargs):
        if kwargs.get("dir") == tmp_path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / ".probe"))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    with pytest.raises(UserError, match=r"^cannot write into .*: read-only file system \(EROFS\); choose a "
                                        r"writable location\.$"):
        check_output_path(tmp_path / "out.json", overwrite=False)


def test_os_error_message_names_the_users_path_and_the_cause():
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/.out.123-abcdefgh.tmp.mp4")
    assert os_error_message(exc, "/data/out.mp4") == ("cannot write /data/out.mp4: no space left on device "
                                                      "(ENOSPC); free some space or choose another location.")
    assert os_error_message(exc).startswith("cannot write /data/.out.123-abcdefgh.tmp.mp4: ")
    assert os_error_message(OSError(errno.EISDIR, "Is a directory")) == "cannot write: is a directory (EISDIR)."


# ------------------------------------------------------------------------------ atomic writes


def test_disk_full_on_a_real_tmpfs_is_one_sentence_and_leaves_nothing(tmp_path):
    with full_tmpfs(tmp_path / "full") as full:
        check_output_path(full / "out.json", overwrite=False)  # the folder takes new (empty) files
        with pytest.raises(UserError) as info:
            write_bytes_atomic(full / "out.bin", b"x" * 100_000)
        assert str(info.value) == (f"cannot write {full / 'out.bin'}: no space left on device (ENOSPC); "
                                   "free some space or choose another location.")
        assert sorted(p.name for p in full.iterdir()) == ["filler"]


def test_disk_full_simulated_at_the_write_call(tmp_path, monkeypatch):
    """The same without root: the write call itself raises ENOSPC, as a full disk makes it."""
    (tmp_path / "out.json").write_text('{"old": 1}\n')

    def full(self, data, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.Path, "write_text", full)
    with pytest.raises(UserError, match=r"^cannot write .*out\.json: no space left on device \(ENOSPC\)"):
        write_json_atomic(tmp_path / "out.json", {"new": 2})
    monkeypatch.undo()
    assert (tmp_path / "out.json").read_text() == '{"old": 1}\n'  # the old output is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # and no temp file is left


def test_torch_write_failure_is_a_sentence(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError of its C++ writer, without an errno."""
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda _: SimpleNamespace(total=1 << 20, used=1 << 20, free=0))
    with pytest.raises(UserError, match=r"cannot write .*model\.pt: no space left on device \(ENOSPC\)"):
        with atomic_path(tmp_path / "model.pt"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    assert list(tmp_path.iterdir()) == []


def test_without_replace_a_file_that_appeared_meanwhile_is_kept(tmp_path):
    out = tmp_path / "out.json"
    with pytest.raises(UserError, match="appeared while this command was writing it"):
        with atomic_path(out, replace=False) as tmp:
            tmp.write_text("new")
            out.write_text("someone else's")  # another program creates the output meanwhile
    assert out.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with atomic_path(out, replace=True) as tmp:
        tmp.write_text("new")
    assert out.read_text() == "new"


# ------------------------------------------------------------------------------ one writer per output


def test_second_writer_of_an_output_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "out.mp4"
    with output_locked_by_another_process(out, tmp_path) as pid:
        with pytest.raises(Busy, match=rf"the output {out} is in use by another process \(pid {pid}\)"):
            with output_lock(out):
                pass
    with output_lock(out):  # free again once that process is gone
        pass


def test_output_lock_is_reentrant_in_one_thread_only(tmp_path):
    import threading

    out = tmp_path / "out.mp4"
    errors = []

    def other_thread():
        try:
            with output_lock(out):
                pass
        except Busy as exc:
            errors.append(exc)

    with output_lock(out), output_lock(tmp_path / "." / "out.mp4"):  # the command, then the library
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1
    other_thread()  # released after the outer block
    assert len(errors) == 1


# ------------------------------------------------------------------------------ stale temp files


def test_stale_temps_of_dead_processes_are_removed_and_others_kept(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    (tmp_path / f".out.{dead}-abcd_123.tmp.mp4").write_bytes(b"half")
    (tmp_path / f".frames.{dead}-k2j4h5g6.tmp").mkdir()  # a folder sink's staging folder
    (tmp_path / f".pose.{dead}-zz99yy88.tmp").mkdir()  # dance pose's staging folder
    (tmp_path / f".out.{alive}-abcd_123.tmp.mp4").write_bytes(b"live writer")
    old_pose = tmp_path / ".pose-q1w2e3r4.tmp"  # older versions: no pid, removed once an hour old
    old_pose.mkdir()
    os.utime(old_pose, (time.time() - 7200, time.time() - 7200))
    young_pose = tmp_path / ".pose-a1s2d3f4.tmp"
    young_pose.mkdir()
    for name in (".pose-notes.tmp", "out.mp4", ".hidden", f"x.{dead}-abcd_123.tmp.mp4"):
        (tmp_path / name).write_text("user's")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f".out.{dead}-abcd_123.tmp.mp4", f".frames.{dead}-k2j4h5g6.tmp",
                                                      f".pose.{dead}-zz99yy88.tmp", ".pose-q1w2e3r4.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".out.{alive}-abcd_123.tmp.mp4", ".pose-a1s2d3f4.tmp", ".pose-notes.tmp", "out.mp4", ".hidden",
         f"x.{dead}-abcd_123.tmp.mp4"])


def test_checking_an_output_removes_stale_temps_beside_it(tmp_path):
    stale = tmp_path / f".out.{_dead_pid()}-abcdefgh.tmp.mp4"
    stale.write_bytes(b"left by a killed run")
    check_output_path(tmp_path / "out.mp4", overwrite=False)
    assert not stale.exists()
