"""The runs folder (vid2vid_app.runs): plain run names, the overwrite / resume policy, one writer per
run, model lookup and listing. Training runs are real (tiny presets, one or two steps)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from translate_utils import make_paired_folders

from vid2vid_app.cli.dance import dance
from vid2vid_app.cli.translate import translate_video
from vid2vid_app.errors import UserError
from vid2vid_app.runs import (
    ModelRecord,
    check_run_folder,
    check_run_name,
    list_models,
    open_run,
    resolve_model_path,
    run_job,
)


def invoke(group, *args):
    result = CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def paired(tmp_path_factory, shared_samples) -> tuple[Path, Path]:
    """A few real day-photo crops (A) and their known transforms (B), 64x64."""
    return make_paired_folders(tmp_path_factory.mktemp("paired"), shared_samples, per_photo=2, size=64)


def p2p_args(paired, runs: Path, name: str, *extra) -> list:
    return ["train", "--mode", "pix2pix", "--paired", *paired, "--preset", "tiny", "--steps", 1,
            "--runs-dir", runs, "--name", name, "-q", *extra]


@pytest.mark.parametrize("name", ["..", ".", "/tmp/elsewhere", "a/b", "", "-x"])
def test_names_that_are_not_plain_are_refused(name):
    with pytest.raises(UserError, match="plain name"):
        check_run_name(name)


@pytest.mark.parametrize("name", ["..", ".", "ABSOLUTE"])
def test_translate_train_overwrite_with_a_path_name_deletes_nothing(paired, tmp_path, name):
    """The reported data loss: `--name ..` with --overwrite removed the runs folder's parent."""
    (tmp_path / "runs").mkdir()
    keep = tmp_path / "keep.txt"
    keep.write_text("k")
    name = str(tmp_path) if name == "ABSOLUTE" else name
    result = invoke(translate_video, *p2p_args(paired, tmp_path / "runs", name, "--overwrite"))
    assert result.exit_code != 0 and "plain name" in result.output
    assert keep.read_text() == "k" and (tmp_path / "runs").is_dir()


def test_dance_train_refuses_a_path_name(tmp_path, bundled_samples):
    result = invoke(dance, "train", bundled_samples / "target_cam01.mp4", "--name", "..", "--runs-dir",
                    tmp_path / "runs", "--overwrite", "--preset", "tiny")
    assert result.exit_code != 0 and "plain name" in result.output
    assert tmp_path.is_dir()


@pytest.mark.parametrize("kind", ["dance run", "user folder"])
def test_translate_overwrite_leaves_folders_of_other_kinds_alone(paired, tmp_path, kind):
    runs = tmp_path / "runs"
    folder = runs / "x"
    folder.mkdir(parents=True)
    marker = folder / ("dance_config.json" if kind == "dance run" else "thesis.txt")
    marker.write_text("{}")
    result = invoke(translate_video, *p2p_args(paired, runs, "x", "--overwrite"))
    assert result.exit_code == 1
    assert ("`dance train` run" if kind == "dance run" else "not a run folder") in result.output
    assert marker.read_text() == "{}"


def test_dance_overwrite_leaves_a_translate_run_alone(tmp_path, bundled_samples):
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    (folder / "translate.json").write_text("{}")
    result = invoke(dance, "train", bundled_samples / "target_cam01.mp4", "--name", "x", "--runs-dir",
                    tmp_path / "runs", "--overwrite", "--preset", "tiny", "--steps", "1")
    assert result.exit_code == 1 and "`translate-video train` run" in result.output
    assert (folder / "translate.json").is_file()


def test_overwrite_with_bad_data_keeps_the_old_run(paired, tmp_path):
    """--overwrite replaces a run only once the new run's data is read and checked."""
    runs = tmp_path / "runs"
    assert invoke(translate_video, *p2p_args(paired, runs, "m")).exit_code == 0
    before = (runs / "m" / "model.pt").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(translate_video, "train", "--mode", "pix2pix", "--paired", empty, empty, "--preset", "tiny",
                    "--runs-dir", runs, "--name", "m", "--overwrite", "-q")
    assert result.exit_code == 1
    assert (runs / "m" / "model.pt").read_bytes() == before
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["m"]


def test_overwrite_replaces_a_run_of_the_same_job(paired, tmp_path):
    runs = tmp_path / "runs"
    assert invoke(translate_video, *p2p_args(paired, runs, "m")).exit_code == 0
    (runs / "m" / "checkpoints" / "stale-extra.pt").write_bytes(b"x")
    assert invoke(translate_video, *p2p_args(paired, runs, "m", "--overwrite")).exit_code == 0
    assert not (runs / "m" / "checkpoints" / "stale-extra.pt").exists()  # the old run is gone
    assert (runs / "m" / "model.pt").is_file()
    assert [p.name for p in runs.iterdir() if ".replaced-" in p.name] == []


def test_a_setting_that_fails_after_setup_leaves_no_folder_behind(paired, tmp_path):
    """Training that fails before its first checkpoint removes the folder it created, so the retry
    is not blocked by "already exists"."""
    runs = tmp_path / "runs"
    with pytest.raises(RuntimeError):
        with open_run(runs / "r", "translate", resume=False, overwrite=False) as state:
            (runs / "r" / "translate.json").write_text("{}")
            assert state.created
            raise RuntimeError("a late failure")
    assert not (runs / "r").exists()
    with open_run(runs / "r", "translate", resume=False, overwrite=False):
        (runs / "r" / "translate.json").write_text("{}")
    assert run_job(runs / "r") == "translate"


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt], ids=["error", "ctrl-c"])
def test_a_replacement_that_stops_before_its_data_is_checked_puts_the_old_run_back(tmp_path, stop):
    folder = tmp_path / "runs" / "r"
    folder.mkdir(parents=True)
    (folder / "translate.json").write_text('{"old": true}')
    with pytest.raises(stop):
        with open_run(folder, "translate", resume=False, overwrite=True):
            (folder / "translate.json").write_text('{"new": true}')
            raise stop()
    assert (folder / "translate.json").read_text() == '{"old": true}'
    assert [p.name for p in folder.parent.iterdir() if ".replaced-" in p.name] == []


REPLACER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from vid2vid_app.runs import open_run
    folder = Path(sys.argv[1])
    with open_run(folder, "translate", resume=False, overwrite=True) as state:
        (folder / "translate.json").write_text('{"new": true}')
        if sys.argv[2] == "started":  # the new run got going (killed while the old one was being deleted)
            (folder / "checkpoints").mkdir()
            (folder / "checkpoints" / "latest.pt").write_bytes(b"x")
        os.kill(os.getpid(), 9)  # killed: no cleanup of any kind runs
""")


@pytest.mark.parametrize("when", ["before-start", "started"])
def test_a_replacement_killed_outright_is_finished_by_the_next_command(tmp_path, when):
    """SIGKILL during --overwrite leaves the old run moved aside; the next command on that run puts
    it back (the new run never started) or deletes it (the new run had written a checkpoint)."""
    folder = tmp_path / "runs" / "r"
    folder.mkdir(parents=True)
    (folder / "translate.json").write_text('{"old": true}')
    result = subprocess.run([sys.executable, "-c", REPLACER, str(folder), when])
    assert result.returncode == -9
    assert [p.name for p in folder.parent.iterdir() if ".replaced-" in p.name] != []
    with open_run(folder, "translate", resume=True, overwrite=False) as state:
        expected = '{"old": true}' if when == "before-start" else '{"new": true}'
        assert (folder / "translate.json").read_text() == expected
        assert any(("earlier run is back" if when == "before-start" else "removed .r.replaced-") in n
                   for n in state.notes)
    assert [p.name for p in folder.parent.iterdir() if ".replaced-" in p.name] == []


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(UserError, match="give one of them"):
        check_run_folder(tmp_path / "r", "dance", resume=True, overwrite=True)


LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vid2vid_app.runs import open_run
    folder = Path(sys.argv[1])
    with open_run(folder, "translate", resume=False, overwrite=False):
        (folder / "translate.json").write_text("{}")
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_one_writer_per_run(tmp_path):
    """While one process has the run open, a second (resume or overwrite) is refused with the owner's
    pid; the first process's run is untouched."""
    folder = tmp_path / "runs" / "r"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder), "30"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        for resume, overwrite in ((True, False), (False, True)):
            with pytest.raises(UserError, match=rf"in use by another process \(pid {holder.pid}\)"):
                with open_run(folder, "translate", resume=resume, overwrite=overwrite):
                    pass
        assert (folder / "translate.json").is_file()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    folder = tmp_path / "runs" / "r"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder), "30"], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "holding"
    holder.kill()
    holder.wait()
    with open_run(folder, "translate", resume=True, overwrite=False) as state:
        assert state.continuing
        assert any(f"left by process {holder.pid}, which is gone" in n for n in state.notes)
    lock_text = (folder.parent / ".r.lock").read_text()
    assert lock_text == ""  # released: no owner named


def test_resume_removes_temp_files_of_killed_writers(tmp_path):
    folder = tmp_path / "runs" / "r"
    (folder / "global" / "checkpoints").mkdir(parents=True)
    (folder / "dance_config.json").write_text("{}")
    dead = folder / "global" / "checkpoints" / ".global_latest.999999-abcdefgh.tmp.pt"
    live = folder / "global" / "checkpoints" / f".global_latest.{os.getpid()}-abcdefgh.tmp.pt"
    mine = folder / "global" / "notes.tmp.pt"
    for f in (dead, live, mine):
        f.write_bytes(b"x")
    with open_run(folder, "dance", resume=True, overwrite=False) as state:
        assert any("temp file" in n for n in state.notes)
    assert not dead.exists() and live.exists() and mine.exists()


def test_model_lookup_and_listing_serve_both_jobs(tmp_path):
    runs = tmp_path / "runs"
    for name, marker in (("alice", "dance_config.json"), ("night2day", "translate.json")):
        (runs / name).mkdir(parents=True)
        (runs / name / marker).write_text("{}")
        torch.save({}, runs / name / "model.pt")
    (runs / "unfinished").mkdir()
    (runs / "unfinished" / "dance_config.json").write_text("{}")
    assert [r.name for r in list_models(runs, "dance")] == ["alice"]
    assert list_models(runs) == [ModelRecord("alice", runs / "alice" / "model.pt", "dance"),
                                 ModelRecord("night2day", runs / "night2day" / "model.pt", "translate")]
    assert resolve_model_path("alice", runs, "dance") == runs / "alice" / "model.pt"
    assert resolve_model_path(runs / "alice", None, "dance") == runs / "alice" / "model.pt"
    with pytest.raises(UserError, match=r"unknown model 'bob'.*models in .*: alice\)"):
        resolve_model_path("bob", runs, "dance")
    with pytest.raises(UserError, match="no model.pt yet.*dance train .*--resume"):
        resolve_model_path("unfinished", runs, "dance")
    with pytest.raises(UserError, match="does not exist"):
        resolve_model_path(tmp_path / "nope.pt", runs, "dance")


def test_runs_dir_from_the_environment(tmp_path, monkeypatch):
    from vid2vid_app.runs import runs_dir

    monkeypatch.setenv("VID2VID_RUNS", str(tmp_path))
    assert runs_dir(None) == tmp_path and runs_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("VID2VID_RUNS")
    assert runs_dir(None) == Path("runs")


def test_steps_for_a_stage_the_run_does_not_train_are_refused(bundled_samples, tmp_path):
    result = invoke(dance, "train", bundled_samples / "target_cam01.mp4", "--name", "x", "--runs-dir",
                    tmp_path / "runs", "--preset", "tiny", "--steps", "local=5", "--dry-run")
    assert result.exit_code == 1
    assert "trains only global" in result.output and "--stages global,local" in result.output


def test_the_same_target_video_twice_is_refused(bundled_samples, tmp_path):
    video = bundled_samples / "target_cam01.mp4"
    result = invoke(dance, "train", video, str(video.parent / "." / video.name), "--name", "x", "--runs-dir",
                    tmp_path / "runs", "--preset", "tiny", "--steps", "1")
    assert result.exit_code == 1 and "given twice" in result.output
    assert not (tmp_path / "runs" / "x").exists()


def test_resume_names_the_ignored_settings_before_training(bundled_samples, tmp_path, caplog):
    """The note about settings a resumed run does not use comes before training, not after it."""
    from vid2vid_app.config import save_json
    from vid2vid_app.dance.config import make_config
    from vid2vid_app.dance.train import resolve_config

    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    save_json(make_config("tiny"), run / "dance_config.json")
    notes: list[str] = []
    with caplog.at_level("WARNING"):
        resolve_config(run, make_config("tiny", ngf=8), True, [], notes)
    assert notes and "ngf" in notes[0] and "ngf" in caplog.text
