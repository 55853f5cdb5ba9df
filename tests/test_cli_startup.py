"""Start-up of the two commands: help and option parsing load no heavy library.

`dance --help` used to take about 3.8 s because parsing imported PyTorch through the pose writer.
Each check runs in a fresh interpreter (this test process has torch loaded already), walks every
group and subcommand of `dance` and `translate-video` through click's CliRunner, and then reads
``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "mediapipe", "cv2")

PROBE = r"""
import json, sys
import click
from click.testing import CliRunner
import vid2vid_app.cli.dance, vid2vid_app.cli.translate
from vid2vid_app.cli.dance import dance
from vid2vid_app.cli.translate import translate_video

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, path + [name])

results = {}
for group in (dance, translate_video):
    for path in walk(group, []):
        result = CliRunner().invoke(group, path + ["--help"])
        results[" ".join([group.name, *path])] = [result.exit_code, result.output]
# Options that click refuses while parsing (range, choice lists from the library's registries).
bad = {"dance pose --smooth-method wobble": (dance, ["pose", "in.mp4", "-o", "out", "--smooth-method", "wobble"]),
       "dance train --threads 0": (dance, ["train", "t.mp4", "--name", "n", "--threads", "0"]),
       "dance transfer --encoder-preset": (dance, ["transfer", "s.mp4", "-m", "m", "-o", "o.mp4",
                                                   "--encoder-preset", "quick"]),
       "translate-video run --threads x": (translate_video, ["run", "in.mp4", "-o", "o.mp4", "-m", "m",
                                                             "--threads", "x"])}
for key, (group, args) in bad.items():
    result = CliRunner().invoke(group, args)
    results[key] = [result.exit_code, result.output]
print(json.dumps({"results": results, "loaded": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


@pytest.fixture(scope="module")
def probe() -> dict:
    """The probe's output: {"results": {command: [exit code, output]}, "loaded": heavy modules}."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_and_parse_errors_import_no_torch_mediapipe_or_opencv(probe):
    """Every command's --help works, options are refused by click itself, and afterwards neither
    torch, mediapipe nor cv2 is loaded."""
    results = probe["results"]
    helps = {k: v for k, v in results.items() if "--" not in k}
    # Both groups and all their subcommands were reached.
    assert {"dance", "dance pose", "dance train", "dance transfer", "dance evaluate", "translate-video",
            "translate-video run", "translate-video train", "translate-video list",
            "translate-video export"} <= set(helps)
    for name, (code, output) in helps.items():
        assert code == 0 and "Usage:" in output, (name, output)
    for name in ("dance pose --smooth-method wobble", "dance train --threads 0", "dance transfer --encoder-preset",
                 "translate-video run --threads x"):
        code, output = results[name]
        assert code == 2 and "Invalid value" in output, (name, output)
    assert "one_euro" in results["dance pose --smooth-method wobble"][1]  # the registry's choices
    assert "veryfast" in results["dance transfer --encoder-preset"][1]
    assert probe["loaded"] == []


def test_every_computing_command_takes_threads(probe):
    """--threads appears in the help of each command that computes (not in `translate-video list`)."""
    results = probe["results"]
    for name in ("dance pose", "dance train", "dance transfer", "dance evaluate", "translate-video run",
                 "translate-video train", "translate-video export"):
        assert "--threads" in results[name][1], name
    assert "--threads" not in results["translate-video list"][1]


def test_cli_start_selects_a_short_openmp_spin_unless_the_user_chose():
    code = ("import os, vid2vid_app.cli; e = os.environ; "
            "print(e.get('OMP_WAIT_POLICY', '-'), e.get('GOMP_SPINCOUNT', '-'), e.get('KMP_BLOCKTIME', '-'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["-", "10000", "1"]
    env["GOMP_SPINCOUNT"] = "500"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["-", "500", "1"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a policy the user chose is left to the runtime's own spin
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["ACTIVE", "500", "-"]
