"""translate-video end to end through the real CLI (click's CliRunner, in process).

Models are trained by the CLI itself on the tiny preset for a few steps (their quality is not the
point here; tests/test_translate_quality.py checks that). Inputs are real: crops of the daynight
photos and a downscaled piece of a real sample clip muxed with a sine audio track.
"""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from translate_utils import DAY, DUSK, clip_frames, make_domain_folder, make_paired_folders, photo
from video_utils import make_test_clip, read_audio_duration

from vid2vid_app.cli.translate import translate_video
from vid2vid_app.imaging import read_image, write_image
from vid2vid_app.media import open_media
from vid2vid_app.translate.model import load_model
from vid2vid_app.video import probe


def invoke(*args, ok=True):
    result = CliRunner().invoke(translate_video, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_samples):
    """A runs folder with a pix2pix model "p2p" and a CycleGAN model "cyc" (tiny, 3 steps each)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("translate")
    dir_a, dir_b = make_paired_folders(root / "paired", shared_samples, per_photo=3, size=72)
    dusk = make_domain_folder(root / "dusk", shared_samples, DUSK, per_photo=2, size=72)
    day = make_domain_folder(root / "day", shared_samples, DAY, per_photo=2, size=72)
    runs = root / "runs"
    invoke("train", "--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "p2p",
           "--runs-dir", runs, "--steps", 3, "--quiet")
    invoke("train", "--mode", "cyclegan", "--preset", "tiny", "--domain-a", dusk, "--domain-b", day,
           "--name", "cyc", "--runs-dir", runs, "--steps", 3, "--quiet")
    return {"runs": runs, "paired": (dir_a, dir_b), "dusk": dusk, "day": day}


@pytest.fixture(scope="module")
def clip(tmp_path_factory, shared_samples):
    """16 real frames (96x170) at 60 fps with a 440 Hz audio track."""
    path = tmp_path_factory.mktemp("clip") / "walk.mp4"
    return make_test_clip(path, clip_frames(shared_samples, count=16, width=96), fps=60, with_audio=True)


def test_default_form_translates_a_video_keeping_frames_fps_audio(runs, clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = invoke("--model", "p2p", clip, "-o", out, "--runs-dir", runs["runs"], "--batch-size", 3)
    src, dst = probe(clip), probe(out)
    assert dst.frame_count == src.frame_count == 16
    assert dst.fps == src.fps == Fraction(60)
    assert (dst.width, dst.height) == (src.width, src.height)
    assert dst.has_audio and abs(read_audio_duration(out) - read_audio_duration(clip)) < 0.1
    assert "16 frames" in result.output and "audio kept" in result.output


def test_encoder_preset_reaches_x264(runs, clip, tmp_path):
    """x264 records its settings in the stream: medium searches sub-pixel motion at level 7,
    veryfast at level 2."""
    for preset, subme in (("medium", b"subme=7"), ("veryfast", b"subme=2")):
        out = tmp_path / f"{preset}.mp4"
        invoke("--model", "p2p", clip, "-o", out, "--runs-dir", runs["runs"], "--encoder-preset", preset, "-q")
        assert probe(out).frame_count == 16
        assert subme in out.read_bytes()


def test_mistyped_subcommand_is_not_taken_for_an_input():
    result = CliRunner().invoke(translate_video, ["lsit"])
    assert result.exit_code == 2 and "No such command 'lsit'" in result.output


def test_image_of_odd_size_is_padded_and_cropped_back(runs, tmp_path, shared_samples):
    image = photo(shared_samples, DAY[1], width=160)[:61, :97]  # not multiples of the U-Net's stride 64
    write_image(tmp_path / "in.png", image)
    invoke("run", tmp_path / "in.png", "-o", tmp_path / "out.png", "-m", "p2p", "--runs-dir", runs["runs"])
    assert read_image(tmp_path / "out.png").shape == (61, 97, 3)


def test_output_equals_the_generator_applied_to_the_padded_frame(runs, tmp_path, shared_samples):
    from vid2vid_app.imaging import crop_to, pad_to_multiple, to_tensor, to_uint8

    image = photo(shared_samples, DAY[2], width=160)[:50, :70]
    write_image(tmp_path / "in.png", image)
    invoke("-m", runs["runs"] / "p2p", tmp_path / "in.png", "-o", tmp_path / "out.png")  # a run folder path
    g = load_model(runs["runs"] / "p2p" / "model.pt").generator()
    padded, size = pad_to_multiple(to_tensor(image), g.stride)
    with torch.inference_mode():
        expected = to_uint8(crop_to(g(padded), size))[0]
    assert np.abs(read_image(tmp_path / "out.png").astype(int) - expected.astype(int)).max() <= 1


def test_folder_keeps_names_and_mixed_sizes(runs, tmp_path, shared_samples):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "f1.png", photo(shared_samples, DAY[0], width=80)[:40])
    write_image(folder / "f10.jpg", photo(shared_samples, DAY[1], width=64)[:36])
    invoke("-m", "cyc", folder, "-o", tmp_path / "out", "--runs-dir", runs["runs"], "--direction", "BtoA")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f1.png", "f10.jpg"]
    assert read_image(tmp_path / "out" / "f1.png").shape == (40, 80, 3)
    assert read_image(tmp_path / "out" / "f10.jpg").shape == (36, 64, 3)


def test_side_by_side_size_and_temporal_keep_frame_count(runs, clip, tmp_path):
    invoke("-m", "cyc", clip, "-o", tmp_path / "sbs.mp4", "--runs-dir", runs["runs"], "--side-by-side",
           "--temporal", "--size", "48x86", "--quiet", "--no-audio")
    info = probe(tmp_path / "sbs.mp4")
    assert (info.width, info.height) == (96, 86) and info.frame_count == 16 and not info.has_audio


def test_existing_output_refused_then_overwritten(runs, tmp_path, shared_samples):
    write_image(tmp_path / "in.png", photo(shared_samples, DAY[0], width=64)[:32])
    write_image(tmp_path / "out.png", np.zeros((8, 8, 3), np.uint8))
    result = invoke("-m", "p2p", tmp_path / "in.png", "-o", tmp_path / "out.png", "--runs-dir", runs["runs"], ok=False)
    assert result.exit_code == 1 and "already exists" in result.output and "--overwrite" in result.output
    assert read_image(tmp_path / "out.png").shape == (8, 8, 3)  # untouched
    invoke("-m", "p2p", tmp_path / "in.png", "-o", tmp_path / "out.png", "--runs-dir", runs["runs"], "--overwrite")
    assert read_image(tmp_path / "out.png").shape == (32, 64, 3)


def test_input_is_never_the_output_even_with_overwrite(runs, tmp_path, shared_samples):
    image = photo(shared_samples, DAY[0], width=64)[:32]
    write_image(tmp_path / "in.png", image)
    result = invoke("-m", "p2p", tmp_path / "in.png", "-o", tmp_path / "in.png", "--runs-dir", runs["runs"],
                    "--overwrite", ok=False)
    assert result.exit_code == 1 and "is the input" in result.output
    assert np.array_equal(read_image(tmp_path / "in.png"), image)  # untouched


@pytest.mark.parametrize(("model", "options", "messages"), [
    ("cyc", ["--mode", "pix2pix"], ("is a cyclegan model, not pix2pix",)),
    ("p2p", ["--direction", "BtoA"], ("pix2pix model", "BtoA")),
    ("nosuch", [], ("cyc, p2p",)),  # the known models are listed
], ids=["mode", "direction", "unknown-name"])
def test_wrong_model_mode_or_direction_is_a_clear_error(runs, tmp_path, shared_samples, model, options, messages):
    write_image(tmp_path / "in.png", photo(shared_samples, DAY[0], width=64)[:32])
    result = invoke("-m", model, tmp_path / "in.png", "--runs-dir", runs["runs"], "-o", tmp_path / "out.png",
                    *options, ok=False)
    assert result.exit_code == 1 and all(m in result.output for m in messages), result.output
    assert not (tmp_path / "out.png").exists()


def test_list_shows_mode_directions_and_training_size(runs):
    lines = invoke("list", "--runs-dir", runs["runs"]).output.splitlines()
    assert lines[0].split() == ["NAME", "MODE", "DIRECTIONS", "TRAIN", "SIZE", "ARCH"]
    assert lines[1].split() == ["cyc", "cyclegan", "AtoB,BtoA", "64x64", "resnet_6blocks"]
    assert lines[2].split() == ["p2p", "pix2pix", "AtoB", "64x64", "unet_256"]


def test_train_refuses_to_clobber_and_resume_continues(runs, tmp_path):
    dir_a, dir_b = runs["paired"]
    run = tmp_path / "runs"
    shutil.copytree(runs["runs"] / "p2p", run / "p2p")
    result = invoke("train", "--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "p2p",
                    "--runs-dir", run, ok=False)
    assert result.exit_code == 1 and "--resume" in result.output and "--overwrite" in result.output
    invoke("train", "--name", "p2p", "--runs-dir", run, "--resume", "--steps", 5, "--quiet")
    assert load_model(run / "p2p" / "model.pt").meta["steps"] == 5
    assert '"step": 5' in (run / "p2p" / "stats.jsonl").read_text()


def test_run_setting_flags_reach_the_loop_also_on_resume(runs, tmp_path):
    """--cpu-bf16, --deterministic and --sync-bn show under "train" in --dry-run and reach the loop:
    its config.json records what it ran with (CPU bf16 by default where the CPU has native bf16).
    On --resume they may be switched on, like --amp."""
    import json

    from vid2vid_app.config import cpu_has_native_bf16

    dir_a, dir_b = runs["paired"]
    common = ["train", "--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "f",
              "--runs-dir", tmp_path / "runs", "--steps", 1, "--quiet"]
    flags = ["--cpu-bf16", "--deterministic", "--sync-bn"]
    keys = ("cpu_bf16", "deterministic", "sync_bn")
    shown = json.loads(invoke(*common, *flags, "--dry-run").output)["config"]["train"]
    assert all(shown[k] for k in keys) and shown["amp"] and not shown["compile"]
    assert json.loads(invoke(*common, "--compile", "--dry-run").output)["config"]["train"]["compile"]

    invoke(*common)
    ran = json.loads((tmp_path / "runs" / "f" / "config.json").read_text())["train"]["main"]
    assert not ran["deterministic"] and not ran["sync_bn"] and ran["cpu_bf16"] is cpu_has_native_bf16()
    resumed = invoke("train", "--name", "f", "--runs-dir", tmp_path / "runs", "--resume", "--steps", 2, *flags)
    assert "ignoring" not in resumed.output
    ran = json.loads((tmp_path / "runs" / "f" / "config.json").read_text())["train"]["main"]
    assert all(ran[k] for k in keys) and ran["steps"] == 2
    both = invoke(*common, "--cpu-bf16", "--fp32", ok=False)
    assert both.exit_code == 1 and "contradicts --fp32" in both.output


def test_resume_keeps_the_precision_the_run_started_with(runs, tmp_path):
    """A run started in the precision this CPU would not choose by itself (--fp32 where it has
    native bf16, --cpu-bf16 elsewhere) continues in it on a plain --resume: the precision was
    decided once, at the start, and the summaries name it."""
    import json

    from vid2vid_app.config import cpu_has_native_bf16

    flag, precision = ("--fp32", "fp32") if cpu_has_native_bf16() else ("--cpu-bf16", "bf16 autocast")
    dir_a, dir_b = runs["paired"]
    first = invoke("train", "--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "k",
                   "--runs-dir", tmp_path, "--steps", 1, flag)
    resumed = invoke("train", "--name", "k", "--runs-dir", tmp_path, "--resume", "--steps", 2)
    ran = json.loads((tmp_path / "k" / "config.json").read_text())["train"]["main"]
    assert ran["cpu_bf16"] is (flag == "--cpu-bf16") and ran["steps"] == 2
    for result in (first, resumed):
        summary = next(line for line in result.output.splitlines() if line.startswith("trained pix2pix model k"))
        assert summary.endswith(f", {precision}"), summary


@pytest.mark.parametrize(("inputs", "messages"), [
    (["--mode", "pix2pix", "--paired", "A", "B"], (": y;", ": z.")),  # names found in one folder only
    (["--mode", "cyclegan", "--domain-a", "empty", "--domain-b", "A"], ("empty", "no images")),
    (["--mode", "cyclegan", "--paired", "A", "A"], ("--domain-a",)),
], ids=["unmatched-names", "empty-domain", "paired-for-cyclegan"])
def test_train_bad_inputs(tmp_path, inputs, messages):
    """A (x, y), B (x, z) and an empty folder; each bad input is refused before a run is written."""
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("x.png", "y.png"):
        write_image(tmp_path / "A" / name, np.zeros((20, 20, 3), np.uint8))
    write_image(tmp_path / "B" / "x.png", np.zeros((20, 20, 3), np.uint8))
    write_image(tmp_path / "B" / "z.png", np.zeros((20, 20, 3), np.uint8))
    runs = tmp_path / "runs"
    folders = [tmp_path / a if a in ("A", "B", "empty") else a for a in inputs]
    result = invoke("train", *folders, "--name", "n", "--runs-dir", runs, ok=False)
    assert result.exit_code == 1 and all(m in result.output for m in messages), result.output
    assert not (runs / "n" / "model.pt").exists()


def test_dry_run_reports_steps_and_mixed_size_note(tmp_path, shared_samples):
    (tmp_path / "dusk").mkdir()
    write_image(tmp_path / "dusk" / "a.png", photo(shared_samples, DUSK[0], width=64)[:40])
    write_image(tmp_path / "dusk" / "b.png", photo(shared_samples, DUSK[1], width=80)[:50])
    day = make_domain_folder(tmp_path / "day", shared_samples, DAY[:1], per_photo=3, size=72)
    result = invoke("train", "--mode", "cyclegan", "--domain-a", tmp_path / "dusk", "--domain-b", day, "--name", "d",
                    "--runs-dir", tmp_path / "runs", "--dry-run", "--epochs", 2, "--epochs-decay", 1,
                    "--fp32", "--tensorboard")
    import json

    report = json.loads(result.output)
    assert report["config"]["train"]["amp"] is False and report["config"]["train"]["tensorboard"] is True
    assert report["config"]["train"]["cpu_bf16"] is False  # --fp32: no bf16 on the CPU either
    assert report["data"] == {"domain_a": 2, "domain_b": 3}
    assert report["steps"] == 9 and report["decay_steps"] == 3  # 3 epochs of max(2, 3) items, batch 1
    assert any("2 different sizes" in n for n in report["notes"])
    assert not (tmp_path / "runs").exists()


def test_export_onnx_matches_pytorch_at_another_size(runs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "cyc.onnx"
    result = invoke("export", "--model", "cyc", "--onnx", out, "--runs-dir", runs["runs"], "--direction", "BtoA")
    assert "max abs diff" in result.output
    g = load_model(runs["runs"] / "cyc" / "model.pt").generator("BtoA")
    x = torch.rand(1, 3, 36, 52) * 2 - 1  # dynamic height and width (multiples of the stride 4)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.inference_mode():
        expected = g(x).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_reference_checkpoints_load_and_foreign_keys_are_named(tmp_path, shared_samples):
    from vid2vid_app.models import build_generator

    # A pytorch-CycleGAN-and-pix2pix CycleGAN pair: bare state dicts named *_net_G_A / *_net_G_B.
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("latest_net_G_A.pth", "latest_net_G_B.pth"):
        torch.save(build_generator("resnet_6blocks", ngf=4).state_dict(), ref / name)
    write_image(tmp_path / "in.png", photo(shared_samples, DAY[0], width=64)[:32])
    invoke("-m", ref / "latest_net_G_A.pth", tmp_path / "in.png", "-o", tmp_path / "b.png", "--direction", "BtoA")
    assert read_image(tmp_path / "b.png").shape == (32, 64, 3)
    model = load_model(ref / "latest_net_G_A.pth")
    assert model.mode == "cyclegan" and set(model.generators) == {"AtoB", "BtoA"} and model.arch == "resnet_6blocks"

    state = build_generator("resnet_6blocks", ngf=4).state_dict()
    state["extra.weight"] = torch.zeros(3)  # keys no architecture has
    state["head.bias"] = torch.zeros(3)
    torch.save(state, tmp_path / "odd.pth")
    result = invoke("-m", tmp_path / "odd.pth", tmp_path / "in.png", "-o", tmp_path / "c.png", ok=False)
    assert result.exit_code == 1 and not (tmp_path / "c.png").exists()
    assert "extra.weight" in result.output and "head.bias" in result.output


def test_media_source_frames_match_output_count_for_folder_input(runs, tmp_path, shared_samples):
    folder = make_domain_folder(tmp_path / "in", shared_samples, DAY[:1], per_photo=5, size=48)
    invoke("-m", "p2p", folder, "-o", tmp_path / "out", "--runs-dir", runs["runs"], "--batch-size", 2)
    assert open_media(tmp_path / "out").frame_count == 5


# ------------------------------------------------------------------------------ never lose a user's files


def test_folder_output_with_overwrite_replaces_only_the_files_it_writes(runs, tmp_path, shared_samples):
    folder = make_domain_folder(tmp_path / "in", shared_samples, DAY[:1], per_photo=2, size=48)
    names = sorted(p.name for p in folder.iterdir())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the user's notes")
    write_image(out / "holiday.png", np.full((8, 8, 3), 7, np.uint8))
    write_image(out / names[0], np.zeros((8, 8, 3), np.uint8))  # an old translation of the same name
    invoke("-m", "p2p", folder, "-o", out, "--runs-dir", runs["runs"], "--overwrite", "-q")
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "holiday.png", "keep.txt"])
    assert (out / "keep.txt").read_text() == "the user's notes"
    assert read_image(out / "holiday.png").max() == 7
    assert read_image(out / names[0]).shape == (48, 48, 3)  # replaced by this run's frame


def test_a_folder_output_inside_the_input_or_holding_the_model_is_refused(runs, tmp_path, shared_samples):
    folder = make_domain_folder(tmp_path / "in", shared_samples, DAY[:1], per_photo=2, size=48)
    run_copy = tmp_path / "runs" / "p2p"
    shutil.copytree(runs["runs"] / "p2p", run_copy)
    before = sorted(p.name for p in run_copy.iterdir())
    result = invoke("-m", run_copy / "model.pt", folder, "-o", folder / "out", "--overwrite", ok=False)
    assert result.exit_code == 1 and "inside the input folder" in result.output
    result = invoke("-m", run_copy / "model.pt", folder, "-o", run_copy, "--overwrite", ok=False)
    assert result.exit_code == 1 and "holds the input" in result.output
    assert sorted(p.name for p in run_copy.iterdir()) == before and not (folder / "out").exists()


def test_export_never_overwrites_its_own_model(runs, tmp_path):
    model = tmp_path / "m.pt"
    shutil.copy(runs["runs"] / "cyc" / "model.pt", model)
    before = model.read_bytes()
    result = invoke("export", "--model", model, "--onnx", model, "--overwrite", ok=False)
    assert result.exit_code == 1 and "is the input" in result.output
    import os

    os.link(model, tmp_path / "same.onnx")  # the model under another name
    result = invoke("export", "--model", model, "--onnx", tmp_path / "same.onnx", "--overwrite", ok=False)
    assert result.exit_code == 1 and "is the input" in result.output
    assert model.read_bytes() == before


def test_a_second_writer_of_one_output_is_refused(runs, clip, tmp_path):
    from fileio_utils import output_locked_by_another_process

    out = tmp_path / "out.mp4"
    with output_locked_by_another_process(out, tmp_path) as pid:
        result = invoke("-m", "p2p", clip, "-o", out, "--runs-dir", runs["runs"], ok=False)
    assert result.exit_code == 1 and f"is in use by another process (pid {pid})" in result.output
    assert not out.exists()


@pytest.mark.parametrize(("output", "message"), [
    ("/proc/out.mp4", "cannot write into /proc: this location does not take new files."),
    ("folder.mp4", "folder.mp4 is a folder; give a file name for the output"),
], ids=["proc", "existing-folder"])
def test_unwritable_outputs_fail_before_any_work(runs, clip, tmp_path, monkeypatch, output, message):
    (tmp_path / "folder.mp4").mkdir()
    monkeypatch.chdir(tmp_path)
    result = invoke("-m", "p2p", clip, "-o", output, "--runs-dir", runs["runs"], "--overwrite", ok=False)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list((tmp_path / "folder.mp4").iterdir()) == []


def test_disk_full_is_one_sentence_and_leaves_nothing(runs, clip, tmp_path):
    from fileio_utils import full_tmpfs

    with full_tmpfs(tmp_path / "disk") as disk:
        result = invoke("-m", "p2p", clip, "-o", disk / "out.mp4", "--runs-dir", runs["runs"], "-q", ok=False)
        assert result.exit_code == 1
        assert result.output.strip() == (f"Error: cannot write {disk / 'out.mp4'}: no space left on device "
                                         "(ENOSPC); free some space or choose another location.")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_killed_runs_temp_file_is_removed_by_the_next_run(runs, tmp_path, shared_samples):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.{dead.pid}-k1l2m3n4.tmp.png"
    stale.write_bytes(b"half an image")
    write_image(tmp_path / "in.png", photo(shared_samples, DAY[0], width=64)[:32])
    invoke("-m", "p2p", tmp_path / "in.png", "-o", tmp_path / "out.png", "--runs-dir", runs["runs"])
    assert not stale.exists() and (tmp_path / "out.png").exists()


def test_summaries_count_in_the_right_number(runs, tmp_path, shared_samples):
    """One image is "1 frame"; training shows its data on the terminal before it starts."""
    write_image(tmp_path / "in.png", photo(shared_samples, DAY[0], width=64)[:32])
    result = invoke("-m", "p2p", tmp_path / "in.png", "-o", tmp_path / "out.png", "--runs-dir", runs["runs"])
    assert "(image, 1 frame, 64x32)" in result.output
    dir_a, dir_b = runs["paired"]
    result = invoke("train", "--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "one",
                    "--runs-dir", tmp_path / "runs", "--steps", 1)
    assert "data: train_pairs" in result.output
    assert "trained pix2pix model one: 1 step in" in result.output


def test_export_checks_its_output_before_loading_and_survives_a_full_disk(runs, tmp_path):
    from fileio_utils import full_tmpfs

    result = invoke("export", "--model", "p2p", "--onnx", "/proc/m.onnx", "--runs-dir", runs["runs"], ok=False)
    assert result.exit_code == 1 and "cannot write into /proc: this location does not take new files." in result.output
    with full_tmpfs(tmp_path / "disk") as disk:
        result = invoke("export", "--model", "p2p", "--onnx", disk / "m.onnx", "--runs-dir", runs["runs"], ok=False)
        assert result.exit_code == 1
        assert result.output.strip() == (f"Error: cannot write {disk / 'm.onnx'}: no space left on device (ENOSPC); "
                                         "free some space or choose another location.")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


@pytest.mark.parametrize("free", [0, 256 << 10], ids=["full", "room-for-logs-only"])
def test_training_onto_a_full_disk_is_one_sentence_and_leaves_no_run(runs, tmp_path, free):
    """A full disk stops training with one sentence naming the file (the lock file, or the first
    checkpoint, which torch reports without an errno), and the new run folder is not left behind."""
    from fileio_utils import full_tmpfs

    dir_a, dir_b = runs["paired"]
    with full_tmpfs(tmp_path / "disk", free=free) as disk:
        result = invoke("train", "--mode", "pix2pix", "--preset", "tiny", "--paired", dir_a, dir_b, "--name", "x",
                        "--runs-dir", disk / "runs", "--steps", 1, "-q", ok=False)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: cannot {'lock' if free == 0 else 'write'} ")
        assert lines[0].endswith(": no space left on device (ENOSPC); free some space or choose another location.")
        assert not (disk / "runs" / "x").exists()
