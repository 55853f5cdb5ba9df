"""`dance evaluate`: metrics on the held-out frames of a run (real prepared data from a sample clip,
real MediaPipe and LPIPS weights) with a tiny random-weight model file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from dance_transfer_utils import CANVAS, cut_clip, save_tiny_model

from vid2vid_app.cli.dance import dance
from vid2vid_app.dance import evaluate as evaluate_module
from vid2vid_app.dance.evaluate import METRIC_KEYS, EvalOptions, evaluate, held_out_frames
from vid2vid_app.dance.model import DanceModel
from vid2vid_app.dance.prepare import prepare_dance_data
from vid2vid_app.errors import UserError
from vid2vid_app.imaging import to_tensor

FRAMES = 30
VAL_FRACTION = 0.3  # the last 9 of 30 frames are held out


@pytest.fixture(scope="module")
def clip(bundled_samples, tmp_path_factory):
    return cut_clip(bundled_samples / "target_cam01.mp4", tmp_path_factory.mktemp("clip") / "target.mp4", FRAMES)


@pytest.fixture(scope="module")
def runs(clip, tmp_path_factory):
    """RUNS/tiny: the run's prepared data (as `dance train` caches it) and a model file recording
    its held-out frames the way `dance train` does."""
    root = tmp_path_factory.mktemp("runs")
    run = root / "tiny"
    data = prepare_dance_data([clip], run / "data", CANVAS, min_frames=4, quiet=True)
    _, val = data.split(VAL_FRACTION)
    record = {"dir": "data", "frames_file": data.frames_path.name, "frames": len(data), "canvas": list(CANVAS),
              "val_start": int(len(data) - round(len(data) * VAL_FRACTION)), "val_frames": [int(i) for i in val],
              "fps": data.fps, "face_side": None}
    save_tiny_model(run / "model.pt", target_size=data.target_size, stats=data.stats, data=record)
    save_tiny_model(root / "no_data" / "model.pt", target_size=data.target_size, stats=data.stats)
    return root


def invoke(*args):
    result = CliRunner().invoke(dance, ["evaluate", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_json_has_every_metric_on_the_held_out_frames(runs, shared_weights, tmp_path):
    out = tmp_path / "eval.json"
    result = invoke("-m", "tiny", "--runs-dir", runs, "--json", out, "--lpips-weights", shared_weights, "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["frames"] == 9
    assert "held-out frames 21-29" in metrics["description"]
    for key in ("psnr", "ssim", "lpips", "flicker"):
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key
    assert -1 <= metrics["ssim"] <= 1 and metrics["lpips"] > 0 and metrics["psnr"] < 40  # random weights
    # The pose detector re-finds the real frames' people where the cached keypoints put them
    # (after letterboxing into the canvas): checks the coordinate mapping end to end.
    assert metrics["pose_distance_real"] < 0.08
    # The random-weight generator (seed 0) draws no person: the detector finds none on its frames,
    # so the pose distance is NaN, written as null, and a note says why.
    assert metrics["pose_distance"] is None
    assert "pose distance: no person was re-detected on the generated frames." in metrics["notes"]
    assert "PSNR" in result.output and "LPIPS alexnet" in result.output


def test_a_perfect_reconstruction_scores_perfectly(runs, shared_weights):
    """With a generator that returns the real frames, the metrics take their ideal values:
    infinite PSNR, SSIM 1, LPIPS 0, flicker 1, pose distance equal to the detector's floor."""
    model = DanceModel.load(runs / "tiny" / "model.pt", "cpu")
    real = held_out_frames(model).real
    frames = iter(real)
    model.generate = lambda pose, prev=None, boxes=None: to_tensor(next(frames))
    report = evaluate(model, EvalOptions(lpips_weights=shared_weights, quiet=True))
    m = report.metrics
    assert m["psnr"] == math.inf
    assert m["ssim"] == pytest.approx(1.0)
    assert m["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert m["flicker"] == pytest.approx(1.0)
    assert m["pose_distance"] == pytest.approx(m["pose_distance_real"])
    assert report.to_json()["psnr"] is None  # JSON has no infinity


def test_on_a_given_video(runs, clip, tmp_path):
    out = tmp_path / "video.json"
    result = invoke("-m", runs / "tiny", clip, "--max-frames", "6", "--no-pose", "--json", out, "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["frames"] == 6 and str(clip) in metrics["description"]
    assert metrics["pose_distance"] is None  # --no-pose


def test_lpips_weights_not_found_is_skipped_with_a_note(runs, monkeypatch):
    """Without --lpips-weights, missing weights skip LPIPS (stand-in for a machine without them:
    the LPIPS constructor raises the same UserError the real one raises for missing files)."""
    import vid2vid_app.metrics as metrics_module

    def missing(*args, **kwargs):
        raise UserError("no alexnet ImageNet weights for LPIPS")

    monkeypatch.setattr(metrics_module, "LPIPS", missing)
    report = evaluate("tiny", EvalOptions(pose=False, max_frames=3, quiet=True), runs_dir=runs)
    assert report.metrics["lpips"] is None
    assert any("LPIPS skipped" in n and "--lpips-weights" in n for n in report.notes)
    assert math.isfinite(report.metrics["psnr"])


def test_explicit_missing_lpips_folder_is_an_error(runs, tmp_path):
    result = invoke("-m", "tiny", "--runs-dir", runs, "--lpips-weights", tmp_path / "nope")
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_model_without_run_data_asks_for_a_video(runs):
    result = invoke("-m", "no_data", "--runs-dir", runs)
    assert result.exit_code == 1
    assert "pass a VIDEO" in result.output


def test_existing_json_is_refused(runs, tmp_path):
    out = tmp_path / "eval.json"
    out.write_text("{}")
    result = invoke("-m", "tiny", "--runs-dir", runs, "--json", out)
    assert result.exit_code == 1 and "already exists" in result.output
    assert out.read_text() == "{}"


def test_unknown_lpips_net_is_rejected():
    with pytest.raises(UserError, match="unknown LPIPS network"):
        evaluate_module.make_lpips(EvalOptions(lpips_net="squeeze"), [])


def test_match_sides_undoes_a_left_right_swap():
    from vid2vid_app.dance.evaluate import match_sides, mirror_permutation
    from vid2vid_app.metrics import pose_distance
    from vid2vid_app.pose import skeleton as sk

    perm = mirror_permutation()
    assert perm[sk.L_SHOULDER] == sk.R_SHOULDER and perm[sk.R_ANKLE] == sk.L_ANKLE and perm[sk.NOSE] == sk.NOSE
    np.testing.assert_array_equal(perm[perm], np.arange(sk.NUM_LANDMARKS))  # an involution
    rng = np.random.default_rng(0)
    ref = np.concatenate([rng.uniform(0, 100, (2, 33, 2)), np.ones((2, 33, 1))], axis=2)
    ref[:, sk.NOSE, :2], ref[:, sk.L_ANKLE, :2], ref[:, sk.R_ANKLE, :2] = (50, 0), (40, 100), (60, 100)
    det = ref.copy()
    det[1] = ref[1, perm]  # frame 1 re-detected with its sides swapped
    assert pose_distance(ref, det) > 0.1
    matched = match_sides(ref, det)
    np.testing.assert_array_equal(matched, ref)
    assert pose_distance(ref, matched) == 0.0


def test_feedback_restarts_after_gaps_and_between_videos():
    from vid2vid_app.dance.evaluate import restarts

    got = restarts(np.array([5, 6, 7, 9, 10, 11]), np.array([0, 0, 0, 0, 1, 1]))
    assert got.tolist() == [True, False, False, True, True, False]


# ------------------------------------------------------------------------------ never lose a user's files


def test_json_never_overwrites_an_input(runs, clip, tmp_path):
    """The video, the model file and its training data are inputs, whatever --overwrite says; the
    refusal comes before the slow part (no LPIPS, pose or generation runs)."""
    import shutil

    video = tmp_path / "v.mp4"
    shutil.copy(clip, video)
    run = tmp_path / "runs" / "tiny"
    shutil.copytree(runs / "tiny", run)
    files = {p: p.read_bytes() for p in [video, *run.rglob("*")] if p.is_file()}
    for args, message in [
        ((video, "-m", run, "--json", video), "is the input"),
        (("-m", run, "--json", run / "model.pt"), "is the input"),
        (("-m", "tiny", "--runs-dir", run.parent, "--json", run / "data" / "poses.npz"), "inside the input folder"),
    ]:
        result = invoke(*args, "--overwrite", "--no-pose")
        assert result.exit_code == 1 and message in result.output, result.output
    assert all(p.read_bytes() == data for p, data in files.items())
    result = invoke("-m", run, "--json", run / "eval.json", "--no-pose", "--max-frames", 2, "--quiet")
    assert result.exit_code == 0, result.output  # beside the inputs is fine
    assert json.loads((run / "eval.json").read_text())["frames"] == 2


def test_unwritable_json_fails_before_the_evaluation(runs, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the evaluation ran although its output cannot be written")

    monkeypatch.setattr(evaluate_module, "reconstruct", no_work)
    result = invoke("-m", "tiny", "--runs-dir", runs, "--json", "/proc/eval.json")
    assert result.exit_code == 1
    assert "cannot write into /proc: this location does not take new files." in result.output


def test_a_second_writer_of_the_json_is_refused(runs, tmp_path):
    from fileio_utils import output_locked_by_another_process

    out = tmp_path / "eval.json"
    with output_locked_by_another_process(out, tmp_path) as pid:
        result = invoke("-m", "tiny", "--runs-dir", runs, "--json", out, "--no-pose")
    assert result.exit_code == 1 and f"is in use by another process (pid {pid})" in result.output
    assert not out.exists()


def test_disk_full_json_is_one_sentence_and_leaves_nothing(runs, tmp_path):
    from fileio_utils import full_tmpfs

    with full_tmpfs(tmp_path / "disk") as disk:
        result = invoke("-m", "tiny", "--runs-dir", runs, "--json", disk / "eval.json", "--no-pose",
                        "--max-frames", 2)
        assert result.exit_code == 1
        assert (f"Error: cannot write {disk / 'eval.json'}: no space left on device (ENOSPC); free some space "
                "or choose another location.") in result.output
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_lpips_note_gives_its_advice_once(runs, tmp_path, monkeypatch):
    """With no weights anywhere (real lookup, empty folders), the note says why and what to pass,
    once."""
    from vid2vid_app.models import vgg as vgg_module

    monkeypatch.delenv("VID2VID_WEIGHTS_DIR", raising=False)
    import vid2vid_app.metrics as metrics_module

    for module in (vgg_module, metrics_module):
        monkeypatch.setattr(module, "weights_dirs", lambda: [tmp_path])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    report = evaluate("tiny", EvalOptions(pose=False, max_frames=2, quiet=True), runs_dir=runs)
    (note,) = [n for n in report.notes if "LPIPS" in n]
    assert note.startswith("LPIPS skipped: no alexnet ImageNet weights")
    assert note.endswith("; pass --lpips-weights DIR or set VID2VID_WEIGHTS_DIR.")
    assert note.count("pass ") == 1
