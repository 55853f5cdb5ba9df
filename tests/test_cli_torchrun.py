"""The training commands under torchrun: two CPU processes (gloo), launched the way users do it.

``python -m torch.distributed.run --nproc_per_node 2 --standalone -m vid2vid_app.cli.<command> train``
runs the whole job on both ranks. Rank 0 alone may create the run folder, prepare the data, write
the config and export the model, and print the summary; a refusal on rank 0 must reach rank 1 too
(both exit with the same error instead of rank 1 waiting forever). Real data, a few steps each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from translate_utils import make_paired_folders
from video_utils import make_test_clip

from vid2vid_app.dance.model import DanceModel
from vid2vid_app.translate.model import load_model
from vid2vid_app.video import iter_frames

pytestmark = pytest.mark.slow  # each test starts three processes and trains in two of them

# Variables of an enclosing launcher would confuse the one started here.
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


def torchrun(module: str, *args, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", module, "train", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def logged_steps(stats: Path) -> list[int]:
    records = [json.loads(line) for line in stats.read_text().splitlines()]
    return [r["step"] for r in records if "losses" in r]


def test_translate_train_under_torchrun(tmp_path, shared_samples):
    """pix2pix on 6 real pairs: one model.pt that loads, written by rank 0 after 2 steps logged once,
    one summary; the same command again is refused on both ranks and leaves the model untouched."""
    dir_a, dir_b = make_paired_folders(tmp_path / "paired", shared_samples, per_photo=2, size=72)
    runs = tmp_path / "runs"
    args = ["--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "p2p", "--runs-dir", runs,
            "--steps", 2, "--device", "cpu"]
    proc = torchrun("vid2vid_app.cli.translate", *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert sorted(runs.rglob("model.pt")) == [runs / "p2p" / "model.pt"]
    model = load_model(runs / "p2p" / "model.pt")
    assert model.mode == "pix2pix" and model.meta["steps"] == 2
    assert logged_steps(runs / "p2p" / "stats.jsonl") == [2]  # logged once (every 10 steps and at the end)
    assert proc.stderr.count("trained pix2pix model p2p") == 1
    assert proc.stderr.count("per process") == 1  # the batch-size note: 5 training pairs, 3 per rank

    first = (runs / "p2p" / "model.pt").stat().st_mtime_ns
    again = torchrun("vid2vid_app.cli.translate", *args)
    assert again.returncode != 0
    assert again.stderr.count("already exists") == 2, again.stderr[-3000:]  # rank 0's refusal, on both ranks
    assert (runs / "p2p" / "model.pt").stat().st_mtime_ns == first


def test_dance_train_under_torchrun(tmp_path, bundled_samples):
    """24 real frames of the bundled sample: rank 0 detects the poses while rank 1 waits and then
    reads its cache; both train the global stage for 2 steps; one model.pt that loads, one summary."""
    frames = list(iter_frames(bundled_samples / "target_cam01.mp4", end=24, size=(90, 160)))
    clip = make_test_clip(tmp_path / "short.mp4", frames, 60)
    runs = tmp_path / "runs"
    proc = torchrun("vid2vid_app.cli.dance", clip, "--name", "kid", "--runs-dir", runs, "--preset", "tiny",
                    "--stages", "global", "--steps", 2, "--device", "cpu")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert sorted(runs.rglob("model.pt")) == [runs / "kid" / "model.pt"]
    model = DanceModel.load(runs / "kid" / "model.pt", "cpu")
    assert model.stage == "global" and model.target_size == (90, 160)
    assert logged_steps(runs / "kid" / "global" / "stats.jsonl") == [2]  # logged once (every 10 steps and at the end)
    assert proc.stdout.count("model kid:") == 1 and proc.stdout.count("global: 2 steps") == 1
