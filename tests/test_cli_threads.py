"""CPU threads: `--threads N` on the commands, and a default that leaves busy cores alone.

Real pieces throughout: the CLI through click's CliRunner, a real training run on frames of the
bundled clips, and a real busy process for the default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cv2
import pytest
import torch
from click.testing import CliRunner

from vid2vid_app.cli.dance import dance
from vid2vid_app.cli.translate import translate_video
from vid2vid_app.device import busy_cores, configure_threads, default_threads, usable_cores


@pytest.fixture(autouse=True)
def restore_threads():
    """Each test may change the process's thread counts; put back what the suite runs with."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


def test_configure_threads_sets_torch_and_opencv():
    for n in (2, 1):
        assert configure_threads(n) == n
        assert torch.get_num_threads() == n
        assert cv2.getNumThreads() == n


def test_without_threads_an_omp_num_threads_choice_is_kept(monkeypatch):
    """The suite runs with OMP_NUM_THREADS=1, so PyTorch started with one thread; no --threads keeps it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(2)
    assert configure_threads(None) == 1 and torch.get_num_threads() == 1


def test_default_fits_the_cpus_this_process_may_use():
    """With the affinity mask cut to one CPU, the default is one thread, whatever the machine has."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from vid2vid_app.device import usable_cores, default_threads; print(usable_cores(), default_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["1", "1"]


def test_a_busy_process_lowers_the_default():
    """A process spinning on one of our CPUs counts as (about) one busy core, so the default takes at
    least one core fewer than the usable ones (and never fewer than 1)."""
    if usable_cores() < 2:
        pytest.skip("needs two usable CPUs")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        assert busy_cores() >= 0.6
        assert 1 <= default_threads() <= usable_cores() - 1
    finally:
        spinner.kill()
        spinner.wait()


@pytest.mark.parametrize("args", [["0"], ["-2"], ["two"]])
def test_invalid_thread_counts_are_refused_by_click(args):
    result = CliRunner().invoke(dance, ["train", "t.mp4", "--name", "n", "--threads", *args])
    assert result.exit_code == 2 and "Invalid value for '--threads'" in result.output


def test_dance_train_threads_reach_torch(bundled_samples):
    """--dry-run resolves the settings only, after the threads were set."""
    result = CliRunner().invoke(dance, ["train", str(bundled_samples / "target_cam01.mp4"), "--name", "n",
                                        "--preset", "tiny", "--dry-run", "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [2, 1])
def test_training_logs_and_reports_the_thread_count(bundled_samples, tmp_path, threads):
    """A real (2-step) pix2pix run on frames of two bundled camera views names its thread count in
    log.txt and in the summary; 2 differs from the suite's OMP_NUM_THREADS=1, so it came from --threads."""
    runs = tmp_path / "runs"
    result = CliRunner().invoke(translate_video, [
        "train", "--mode", "pix2pix", "--preset", "tiny", "--paired-video", str(bundled_samples / "target_cam01.mp4"),
        str(bundled_samples / "target_cam02.mp4"), "--max-frames", "4", "--steps", "2", "--name", "t",
        "--runs-dir", str(runs), "--threads", str(threads)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = f"{threads} CPU thread{'s' if threads > 1 else ''}"
    assert f"on {expected}" in result.output
    assert f"{expected})" in (runs / "t" / "log.txt").read_text()
    assert torch.get_num_threads() == threads
